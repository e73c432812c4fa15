from __future__ import annotations

import pytest

from fer_lightning import precision


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)


def test_bf16_cpu_gets_bf16_mixed(monkeypatch: pytest.MonkeyPatch, no_cuda: None) -> None:
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    assert precision.choose_precision("auto") == precision.choose_precision("cpu") == "bf16-mixed"


def test_cpu_without_bf16_stays_fp32_in_channels_last(monkeypatch: pytest.MonkeyPatch, no_cuda: None) -> None:
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    assert precision.resolve_precision("auto", "auto", "auto") == ("32-true", True)


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bf16-mixed"), (False, "16-mixed")])
def test_gpu_prefers_bf16_then_fp16(monkeypatch: pytest.MonkeyPatch, bf16: bool, expected: str) -> None:
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(precision.torch.cuda, "is_bf16_supported", lambda: bf16)
    assert precision.choose_precision("auto") == expected


def test_explicit_settings_win(monkeypatch: pytest.MonkeyPatch, no_cuda: None) -> None:
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    assert precision.resolve_precision("32-true", False, "cpu") == ("32-true", False)
    assert precision.resolve_precision("auto", False, "cpu") == ("bf16-mixed", False)


def test_detection_answers_on_this_machine() -> None:
    assert isinstance(precision.cpu_supports_bf16(), bool)


@pytest.mark.parametrize(("avx512_bf16", "amx", "expected"),
                         [(False, False, False), (True, False, True), (False, True, True)])
def test_only_a_cpu_with_bf16_arithmetic_counts(monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool,
                                                  expected: bool) -> None:
    """oneDNN says yes on any AVX-512 CPU and emulates bf16 there, at a third of float32's speed."""
    monkeypatch.setattr(precision.torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(precision.torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(precision.torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert precision.cpu_supports_bf16() is expected
