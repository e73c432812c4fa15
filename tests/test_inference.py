"""A checkpoint alone rebuilds its network and normalisation; bad checkpoints are one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import best_checkpoint
from hydra.utils import instantiate

from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.errors import ConfigError
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.runtime_names import AUTO
from fer_lightning.inference.runtimes import chosen_runtime
from fer_lightning.models.checkpoints import CheckpointError


def test_checkpoint_reproduces_the_runs_saved_logits(trained_runs: list[Path]) -> None:
    images, labels = load_fer2013(trained_runs[0].parent / "fer_synthetic.csv").split("PrivateTest")
    for run_dir in trained_runs:
        saved = np.load(run_dir / "logits_test.npz")
        tta = json.loads((run_dir / "summary.json").read_text())["tta"]  # the logits are the chosen TTA's
        logits = FaceClassifier.from_checkpoint(best_checkpoint(run_dir), tta=tta).logits(images)
        np.testing.assert_array_equal(saved["labels"], labels)
        np.testing.assert_allclose(logits, saved["logits"], rtol=1e-4, atol=1e-4)


def test_checkpoint_carries_the_net_config(trained_runs: list[Path]) -> None:
    hparams = torch.load(best_checkpoint(trained_runs[1]), weights_only=True)["hyper_parameters"]
    assert hparams["net_config"]["_target_"] == "fer_lightning.models.cnn.FerCNN"
    assert hparams["net_config"]["activation"] == "leaky_relu"


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("tta", ["none", "hflip_shifts"])
def test_graph_runtimes_give_pytorchs_logits(trained_runs: list[Path], runtime: str, tta: str) -> None:
    images, _ = load_fer2013(trained_runs[0].parent / "fer_synthetic.csv").split("PublicTest")
    checkpoint = best_checkpoint(trained_runs[1])
    expected = FaceClassifier.from_checkpoint(checkpoint, tta=tta).logits(images)
    graph = FaceClassifier.from_checkpoint(checkpoint, tta=tta, runtime=runtime)
    np.testing.assert_allclose(graph.logits(images), expected, atol=1e-4)
    for face in range(3):  # one face at a time (OpenVINO's copy for one face's views) gives the batch's answer
        np.testing.assert_allclose(graph.logits(images[face:face + 1]), expected[face:face + 1], atol=1e-4)
    with pytest.raises(ValueError, match="runtime must be one of torch, torch_compile, onnxruntime, openvino"):
        FaceClassifier.from_checkpoint(checkpoint, runtime="tensorrt")


def test_auto_runtime_is_openvino_for_bf16_or_int8_and_onnxruntime_for_a_float32_graph() -> None:
    assert [chosen_runtime(AUTO, bf16, int8) for bf16, int8 in ((True, False), (False, True), (False, False))] == [
        "openvino", "openvino", "onnxruntime"]
    assert chosen_runtime("torch", bf16=True) == "torch"  # a named runtime is kept
    with pytest.raises(ConfigError, match="runtime must be auto or one of torch, torch_compile, onnxruntime, "
                                          "openvino, got 'tensorrt'"):
        chosen_runtime("tensorrt", bf16=False)


# A net config as checkpoints saved it before the study's exact nets (ede98dc, 2026-11-25): no conv_padding or
# norm_after_activation keys, and the class at its path of then. The weights such a checkpoint holds, name by
# name (read from one written then).
OLD_NET_CONFIG = {"_target_": "fer_lightning.model.FerCNN", "activation": "relu",
                  "conv_blocks": [{"filters": 4, "kernel_size": [5, 5], "l2": 0.001},
                                  {"filters": 6, "kernel_size": [3, 3], "pool": False}],
                  "dense_blocks": [{"units": 8}]}
OLD_WEIGHTS = {"features.0.weight": (4, 1, 5, 5), "features.1.weight": (4,), "features.1.bias": (4,),
               "features.1.running_mean": (4,), "features.1.running_var": (4,), "features.1.num_batches_tracked": (),
               "features.5.weight": (6, 4, 3, 3), "features.6.weight": (6,), "features.6.bias": (6,),
               "features.6.running_mean": (6,), "features.6.running_var": (6,), "features.6.num_batches_tracked": (),
               "classifier.weight": (7, 8), "classifier.bias": (7,), "head.1.weight": (8, 3456), "head.1.bias": (8,),
               "head.4.weight": (7, 8), "head.4.bias": (7,)}


def test_a_checkpoint_from_before_the_study_nets_predicts_as_before(trained_runs: list[Path], tmp_path: Path) -> None:
    """Its saved config rebuilds the same net (bias-free convs, BatchNorm first, 'same' padding), weights load."""
    net = instantiate({**OLD_NET_CONFIG, "_target_": "fer_lightning.models.cnn.FerCNN"})
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == OLD_WEIGHTS
    assert isinstance(net.features[1], torch.nn.BatchNorm2d)
    checkpoint = torch.load(best_checkpoint(trained_runs[0]), weights_only=True)
    checkpoint["hyper_parameters"]["net_config"] = OLD_NET_CONFIG
    checkpoint["state_dict"] = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save(checkpoint, tmp_path / "old.ckpt")
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    mean, std = (checkpoint["FerDataModule"][k].float() for k in ("mean", "std"))
    with torch.no_grad():
        expected = net.eval()((torch.from_numpy(faces).unsqueeze(1).float() - mean) / std).numpy()
    np.testing.assert_allclose(FaceClassifier.from_checkpoint(tmp_path / "old.ckpt").logits(faces), expected,
                               atol=1e-5)


def test_images_must_be_uint8_faces(trained_runs: list[Path]) -> None:
    classifier = FaceClassifier.from_checkpoint(best_checkpoint(trained_runs[0]))
    with pytest.raises(ValueError, match=r"expected \(N, 48, 48\) uint8 faces, got float64"):
        classifier.logits(np.zeros((2, 48, 48)))


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"nope\.ckpt: no such checkpoint file"):
        FaceClassifier.from_checkpoint(tmp_path / "nope.ckpt")


def test_truncated_checkpoint_is_one_clear_error(trained_runs: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(best_checkpoint(trained_runs[0]).read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"broken\.ckpt: not a readable checkpoint"):
        FaceClassifier.from_checkpoint(broken)


def test_foreign_checkpoint(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.ckpt: lacks FerDataModule"):
        FaceClassifier.from_checkpoint(foreign)


def test_checkpoint_without_a_net_config_is_refused(trained_runs: list[Path], tmp_path: Path) -> None:
    checkpoint = torch.load(best_checkpoint(trained_runs[0]), weights_only=True)
    del checkpoint["hyper_parameters"]["net_config"]
    torch.save(checkpoint, tmp_path / "anonymous.ckpt")
    with pytest.raises(CheckpointError, match=r"anonymous\.ckpt: holds no net_config"):
        FaceClassifier.from_checkpoint(tmp_path / "anonymous.ckpt")

