"""Compiled steps kept on disk: the same results as the plain function, one entry for every batch size, loaded by a
later process instead of compiled again, and compiled again where an entry does not load."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from fer_lightning.models import compiled_steps
from fer_lightning.models.compiled_steps import compiled_on_disk


def _positive(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, x, 0.0)


def _channel_sums(x: torch.Tensor, weight: torch.Tensor, scale: float) -> torch.Tensor:
    """Calls a helper of its module's, as the fused tails' steps do: a loaded step must be given the module's names."""
    return (_positive(x) * weight[None, :, None, None]).sum((0, 2, 3)) * scale


@pytest.fixture()
def entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(compiled_steps, "entries_dir", lambda: tmp_path)
    return tmp_path


def _batch(size: int) -> torch.Tensor:
    return torch.randn(size, 3, 4, 4, generator=torch.Generator().manual_seed(size))


def test_one_entry_serves_every_batch_size_and_a_later_process_loads_it(entries: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    weight = torch.tensor([1.0, -2.0, 0.5])
    step = compiled_on_disk(_channel_sums)
    for size in (8, 5):
        torch.testing.assert_close(step(_batch(size), weight, 2.0), _channel_sums(_batch(size), weight, 2.0))
    assert len(list(entries.iterdir())) == 1

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(torch, "compile", no_compiling)
    later = compiled_on_disk(_channel_sums)  # a new process: nothing loaded yet
    torch.testing.assert_close(later(_batch(3), weight, 2.0), _channel_sums(_batch(3), weight, 2.0))


def test_other_values_of_a_plain_argument_compile_their_own_entry(entries: Path) -> None:
    weight = torch.ones(3)
    step = compiled_on_disk(_channel_sums)
    torch.testing.assert_close(step(_batch(4), weight, 2.0), _channel_sums(_batch(4), weight, 2.0))
    torch.testing.assert_close(step(_batch(4), weight, -1.0), _channel_sums(_batch(4), weight, -1.0))
    assert len(list(entries.iterdir())) == 2


def test_an_entry_that_does_not_load_is_compiled_again(entries: Path, caplog: pytest.LogCaptureFixture) -> None:
    weight = torch.ones(3)
    compiled_on_disk(_channel_sums)(_batch(4), weight, 1.0)
    (entry,) = entries.iterdir()
    entry.write_bytes(b"half a file")
    with caplog.at_level(logging.WARNING):
        out = compiled_on_disk(_channel_sums)(_batch(4), weight, 1.0)
    torch.testing.assert_close(out, _channel_sums(_batch(4), weight, 1.0))
    assert "did not load" in caplog.text
    assert entry.stat().st_size > len(b"half a file")


def test_a_later_version_that_does_not_load_is_removed_not_warned_about_by_every_run(
        entries: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A second version left broken (here by hand; on 2026-12-04 by a run compiled under a TorchDispatchMode) stayed on
    disk while the first version served every batch, so each later process warned about it again."""
    weight = torch.ones(3)
    step = compiled_on_disk(_channel_sums)
    for size in (4, 400):  # the large batch's guards refuse the first version: a second slot
        step(_batch(size), weight, 1.0)
    broken = max(entries.iterdir(), key=lambda path: path.name)
    broken.write_bytes(b"half a file")
    for run in range(2):  # two later processes, each with a small batch only
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            torch.testing.assert_close(compiled_on_disk(_channel_sums)(_batch(4), weight, 1.0),
                                       _channel_sums(_batch(4), weight, 1.0))
        assert ("did not load" in caplog.text) == (run == 0)
    assert not broken.exists()


def test_a_batch_size_the_guards_refuse_compiles_a_version_kept_beside_the_first(
        entries: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inductor picks other code for large reductions (N*H*W over 4096 here), and guards the entry with that bound."""
    weight = torch.ones(3)
    step = compiled_on_disk(_channel_sums)
    with caplog.at_level(logging.INFO, logger="fer_lightning.models.compiled_steps"):
        for size in (4, 400, 4):
            torch.testing.assert_close(step(_batch(size), weight, 1.0), _channel_sums(_batch(size), weight, 1.0))
    assert caplog.text.count("guards refused a batch of 400 (") == 1
    assert len(list(entries.iterdir())) == 2

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(torch, "compile", no_compiling)
    later = compiled_on_disk(_channel_sums)  # a new process loads both versions: small and large batches alike
    for size in (300, 4):
        torch.testing.assert_close(later(_batch(size), weight, 1.0), _channel_sums(_batch(size), weight, 1.0))


def test_a_run_with_other_threads_has_entries_of_its_own_not_a_refusal_at_every_call(
        entries: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Dynamo guards the thread count. Keyed without it, a 1-thread run (two side by side, the tests) found the entry a
    2-thread run had compiled, and every call raised and caught the guard's refusal before the 1-thread version ran
    (35 us a call on the 2-core Zen 3, 2026-12-05: little time, but an exception nine times a training step)."""
    weight, threads = torch.ones(3), torch.get_num_threads()
    try:
        for count in (2, 1, 2, 1):
            torch.set_num_threads(count)
            with caplog.at_level(logging.INFO, logger="fer_lightning.models.compiled_steps"):
                out = compiled_on_disk(_channel_sums)(_batch(4), weight, 1.0)  # a new process each time
            torch.testing.assert_close(out, _channel_sums(_batch(4), weight, 1.0))
    finally:
        torch.set_num_threads(threads)
    assert "guards refused" not in caplog.text
    assert len(list(entries.iterdir())) == 2
