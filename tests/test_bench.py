"""fer-bench prints every figure the speed targets are stated in, measured on a real (tiny) training epoch."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import best_checkpoint, compose_config, load_script, tiny_run_overrides
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.autograd import DeviceType

from fer_lightning.bench import speed
from fer_lightning.bench.clocks import EpochClock, device_clock
from fer_lightning.bench.speed import bench, compute_dtype, matmul_peak_tflops
from fer_lightning.bench.step_profile import StepProfiler, step_figures
from fer_lightning.errors import ConfigError, FerError
from fer_lightning.inference import timing
from fer_lightning.inference.runtime_names import AUTO
from fer_lightning.inference.runtimes import chosen_runtime
from fer_lightning.inference.timing import timings
from fer_lightning.machine import cpu_name
from fer_lightning.precision import inference_bf16
from fer_lightning.training.run_dir import RunDir

KEYS = {"train_images_per_s", "epoch_seconds", "infer_images_per_s", "latency_ms_p50", "latency_ms_p95",
        "precision", "memory_format", "device", "cpu", "infer_runtime", "torch_faces_per_s",
        "openvino_latency_ms_p50", "onnxruntime_faces_per_s"}
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
SCRIPTS = Path(__file__).resolve().parents[1] / "docs" / "scripts"  # the repo's own measuring scripts


def test_bench_reports_training_and_inference_speed(tmp_path: Path, fer_csv: Path, capsys) -> None:
    cfg = compose_config("bench", [*tiny_run_overrides(fer_csv, tmp_path / "run", tmp_path / "cache"),
                                   "infer_batch=32", "trainer.limit_train_batches=5", "warmup_batches=3",
                                   "profile_batches=1", "runtimes=[auto,openvino,onnxruntime,torch,openvino_int8]"])
    figures = bench(cfg)
    printed = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines() if "=" in line)
    assert printed.keys() >= KEYS and figures.keys() >= KEYS
    assert figures["train_images_per_s"] > 0 and figures["epoch_seconds"] > 0
    assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p95"] and figures["infer_images_per_s"] > 0
    # auto: fer-predict's pick for a float graph in float32, timed once though the list names it again
    assert figures["infer_runtime"] == "onnxruntime"
    assert figures["infer_images_per_s"] == figures["onnxruntime_faces_per_s"]
    assert not any(key.startswith("auto_") for key in figures)
    assert figures["openvino_int8_faces_per_s"] > 0 and (tmp_path / "run" / "model.int8.onnx").is_file()
    assert figures["device"] == "cpu"
    assert figures["precision"] == "32-true" and not (tmp_path / "run" / "metrics.json").exists()  # no test pass
    assert json.loads((tmp_path / "run" / "bench.json").read_text())["precision"] == "32-true"
    expected_gflops = 3 * figures["forward_mflops_per_face"] * figures["train_images_per_s"] / 1e3
    assert figures["train_gflops_per_s"] == pytest.approx(expected_gflops)
    peak = figures["peak_tflops"]
    assert peak > 0 and figures["mfu"] == pytest.approx(expected_gflops / 1e3 / peak)
    # The profiled step (the warm-up's second): a CNN's forward and backward are many operations, none on a GPU.
    assert figures["profile_step_ms"] > 0 and figures["profile_aten_ops"] > 50
    assert "profile_device_busy_ms" not in figures
    by_time, by_count = (tmp_path / "run" / "profile.txt").read_text().split("By count, over 1 step:")
    assert by_time.startswith("By time, over 1 step:") and "aten::convolution_backward" in by_time
    counts = [int(line.split()[-1]) for line in by_count.splitlines() if line.strip().startswith("aten::")]
    assert len(counts) > 10 and counts == sorted(counts, reverse=True)  # the most frequent operations first


def test_the_profiled_steps_must_fit_inside_the_warm_up() -> None:
    profiler = StepProfiler(3, warmup_batches=10)
    assert (profiler.first, profiler.steps) == (6, 3)  # batches 6, 7, 8; the clock starts after batch 9
    with pytest.raises(FerError, match="profile_batches=3 needs warmup_batches of at least 5"):
        StepProfiler(3, warmup_batches=4)


def test_step_figures_split_a_gpu_step_into_kernels_waits_and_launches() -> None:
    def op(key: str, count: int, cpu_us: float = 0, device_us: float = 0, device_type: DeviceType = DeviceType.CPU):
        return SimpleNamespace(key=key, count=count, self_cpu_time_total=cpu_us, self_device_time_total=device_us,
                               device_type=device_type, is_user_annotation=False)

    operations = [op("aten::conv2d", 4), op("aten::convolution", 4), op("cudaLaunchKernel", 6, cpu_us=30),
                  op("cudaStreamSynchronize", 2, cpu_us=4000), op("cudaDeviceSynchronize", 1, cpu_us=9000),
                  op("sm90_xmma_fprop", 6, device_us=3000, device_type=DeviceType.CUDA)]
    figures = step_figures(operations, seconds=0.032, steps=2, on_gpu=True)
    assert figures == pytest.approx({"profile_step_ms": 16.0, "profile_aten_ops": 4.0, "profile_device_busy_ms": 1.5,
                                     "profile_sync_wait_ms": 2.0, "profile_kernel_launches": 3.0})
    host_only = step_figures(operations[:-1], seconds=0.032, steps=2, on_gpu=True)  # no CUPTI: no kernels recorded
    assert host_only == pytest.approx({"profile_step_ms": 16.0, "profile_aten_ops": 4.0})


def test_epoch_clock_leaves_the_warm_up_batches_out_of_the_steady_figure() -> None:
    clock = EpochClock(warmup_batches=2)
    trainer = SimpleNamespace(num_training_batches=5, train_dataloader=[])
    module = SimpleNamespace(device=torch.device("cpu"))
    labels = np.zeros(8)
    for epoch in range(2):
        clock.on_train_epoch_start(trainer, module)
        for index in range(5):
            clock.on_train_batch_end(trainer, module, None, (None, labels), index)
        if epoch == 0:
            assert clock.images == 40 and clock.steady_images == 24  # batches 2, 3, 4
            first_epoch = clock.steady_seconds
            time.sleep(0.05)  # "validation": between epochs, not counted
        clock.on_train_epoch_end(trainer, module)
    assert clock.steady_images == 24 + 40 and clock.epoch_images == 40 and clock.loader == "dataloader"
    assert 0 < first_epoch < clock.steady_seconds <= first_epoch + clock.epoch_seconds  # the sleep left out


def test_the_cpu_is_named_with_its_family_and_model(tmp_path: Path) -> None:
    """Two EPYC generations both call themselves "AMD EPYC" on the project's machines; their numbers tell them
    apart. The first processor's lines count; without a cpuinfo file, Python's name for the processor."""
    cpuinfo = tmp_path / "cpuinfo"
    processor = ("processor\t: {}\ncpu family\t: 25\nmodel\t\t: {}\nmodel name\t: AMD EPYC\n"
                 "flags\t\t: fpu avx2 avx512f avx512_bf16\n\n")
    cpuinfo.write_text(processor.format(0, 17) + processor.format(1, 99))
    assert cpu_name(cpuinfo) == f"AMD EPYC (family 25 model 17), {os.cpu_count()} cores, AVX-512 bf16"
    assert cpu_name(tmp_path / "none").startswith(f"{platform.processor() or platform.machine()}, ")


def test_the_peak_is_the_fastest_round_not_one_the_host_held_up(monkeypatch) -> None:
    """A round slowed by something else on the machine (here the first, twice as long) does not lower the ceiling:
    timed as one block, it made mfu read 1.4."""
    readings = iter([0.0, 2.0, 10.0, 11.0, 20.0, 21.0])  # each round's start and end: 2 s, then 1 s twice
    monkeypatch.setattr(speed, "device_clock", lambda device: next(readings))
    peak = matmul_peak_tflops(torch.device("cpu"), torch.float32, side=16, rounds=3, products=4)
    assert peak == pytest.approx(2 * 16**3 * 4 / 1.0 / 1e12)


def test_the_clock_waits_for_a_gpu_and_the_peak_is_a_rate(monkeypatch) -> None:
    waits = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: waits.append(device))
    device_clock(torch.device("cpu"))
    assert waits == []
    device_clock(torch.device("cuda", 0))
    assert waits == [torch.device("cuda", 0)]
    assert 0.001 < matmul_peak_tflops(torch.device("cpu"), torch.float32, side=256, rounds=2, products=1) < 1000
    assert [compute_dtype(p) for p in ("bf16-mixed", "16-mixed", "32-true")] == [torch.bfloat16, torch.float16,
                                                                                  torch.float32]


def test_timings_count_faces_per_second() -> None:
    calls = []

    def score(faces: np.ndarray) -> np.ndarray:
        calls.append(len(faces))
        return np.zeros((len(faces), 7))

    result = timings(score, np.zeros((3, 48, 48), np.uint8), single_runs=5, batch=8, rounds=2, batch_runs=1)
    assert calls.count(8) == 3 and calls.count(1) == 15  # warm-up + timed runs, at the sizes asked for
    assert result["faces_per_s"] > 0 and result["latency_ms_p50"] <= result["latency_ms_p95"]


def test_throughput_is_the_median_round_not_one_the_host_held_up(monkeypatch) -> None:
    """Each batch takes one second on a clock the scoring advances, except in one round, which the host slows
    tenfold: the figure stays at a batch a second, where one timed block would have averaged the slow round in."""
    clock = SimpleNamespace(now=0.0, batches=0)

    def score(faces: np.ndarray) -> np.ndarray:
        if len(faces) == 8:
            clock.batches += 1
            clock.now += 10.0 if clock.batches in (4, 5) else 1.0  # the second timed round: batches 4 and 5
        return np.zeros((len(faces), 7))

    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    result = timings(score, np.zeros((3, 48, 48), np.uint8), single_runs=5, batch=8, rounds=3, batch_runs=2)
    assert result["faces_per_s"] == pytest.approx(8.0)


@pytest.mark.skipif(not HAS_TENSORFLOW, reason='the Keras reference needs TensorFlow: pip install -e ".[keras]"')
@pytest.mark.parametrize("model", ["relu", "leaky"])
def test_keras_reference_is_the_same_net(model: str) -> None:
    from fer_lightning.bench.keras_reference import build_keras_model

    cfg = compose_config("train", [f"model={model}"])
    keras_model = build_keras_model(OmegaConf.to_container(cfg.model.net, resolve=True))
    ours = instantiate(cfg.model.net)
    batchnorm_stats = sum(m.running_mean.numel() * 2 for m in ours.modules() if isinstance(m, nn.BatchNorm2d))
    assert keras_model.count_params() == sum(p.numel() for p in ours.parameters()) + batchnorm_stats == 969_255
    kinds = [type(layer).__name__ for layer in keras_model.layers]
    activation = ["LeakyReLU"] if model == "leaky" else []
    assert kinds[:4 + len(activation)] == ["Conv2D", *activation, "BatchNormalization", "MaxPooling2D", "Dropout"]


@pytest.mark.skipif(not HAS_TENSORFLOW, reason='the Keras reference needs TensorFlow: pip install -e ".[keras]"')
def test_bench_times_keras_beside_ours(tmp_path: Path, fer_csv: Path) -> None:
    cfg = compose_config("bench", [*tiny_run_overrides(fer_csv, tmp_path / "run", tmp_path / "cache"),
                                   "infer_batch=32", "warmup_batches=1", "keras=true", "keras_infer_batch=64",
                                   "runtimes=[torch]", "data.batch_size=16"])
    figures = bench(cfg)
    assert figures["keras_train_images_per_s"] > 0 and figures["keras_infer_images_per_s"] > 0
    assert figures["train_speedup_vs_keras"] == pytest.approx(
        figures["train_images_per_s"] / figures["keras_train_images_per_s"])
    assert figures["infer_speedup_vs_keras"] == pytest.approx(
        figures["infer_images_per_s"] / figures["keras_infer_images_per_s"])


def test_keras_reference_refuses_nets_the_study_never_had() -> None:
    pytest.importorskip("keras", reason='the Keras reference needs TensorFlow: pip install -e ".[keras]"')
    from fer_lightning.bench.keras_reference import build_keras_model

    net = OmegaConf.to_container(compose_config("train", ["model=relu_wide"]).model.net, resolve=True)
    with pytest.raises(FerError, match="builds the study's nets only"):
        build_keras_model(net)


def test_step_breakdown_times_every_layer_that_runs_forward_and_backward(monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))  # in this process, as step_paths below: its imports are ours
    from step_breakdown import main

    from fer_lightning.models import cnn
    monkeypatch.setattr(cnn, "small_map_conv", cnn.small_map_conv)  # the script times it through a hooked copy
    main(["data.batch_size=4", "trainer.precision=32-true"])
    out = capsys.readouterr().out
    rows = {line[:18].strip(): line[18:].split() for line in out.splitlines()[2:]}
    net = instantiate(compose_config("train").model.net)
    # Each activation -> BatchNorm -> max-pool -> dropout runs fused in training, and is timed as one.
    fused = {i + k for i in net.fused_tails for k in range(4)}
    assert len(fused) == 12
    layers = [f"{i:02d} {type(m).__name__}" for i, m in enumerate(net.features) if i not in fused]
    layers += [f"{i:02d}-{i + 3:02d} fused" for i in sorted(fused)[::4]] + ["head"]
    assert set(layers) <= set(rows)
    for layer in layers:  # forward ms, backward ms, share
        assert float(rows[layer][0]) > 0 and float(rows[layer][1]) > 0, layer
    assert "32-true, channels_last, batch 4" in out.splitlines()[0]


def test_step_paths_times_each_variant_and_switches_only_its_own_path(monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    from step_paths import main, variant

    from fer_lightning.models import cnn
    # Compiling the tails would add seconds; the switch itself is checked below.
    main(["data.batch_size=4", "trainer.precision=32-true", "fuse_tails=false"])
    rows = {line[:20].strip(): line[20:].split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == {"both paths", "no fused tails", "no small-map path"}
    assert all(float(value) > 0 for row in rows.values() for value in row)  # median, mean, min, max ms; img/s

    net = instantiate(compose_config("train").model.net)
    tails, small_map = dict(net.fused_tails), cnn.takes_small_map_path
    with variant(net, "no fused tails"):
        assert net.fused_tails == {} and cnn.takes_small_map_path is small_map
    with variant(net, "no small-map path"):
        assert net.fused_tails == tails and not cnn.takes_small_map_path(nn.Conv2d(2, 2, 3), torch.ones(2, 2, 4, 4))
    assert net.fused_tails == tails and cnn.takes_small_map_path is small_map


def test_bench_before_after_runs_both_commits_in_turn_and_removes_its_worktree(tmp_path: Path, fer_csv: Path) -> None:
    repo = SCRIPTS.parents[1]
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout
    run_dir = tmp_path / "run"
    overrides = [*tiny_run_overrides(fer_csv, run_dir, tmp_path / "cache"), f"hydra.run.dir={run_dir}",
                 "infer_batch=8", "warmup_batches=1", "runtimes=[torch]"]
    done = subprocess.run(["bash", str(SCRIPTS / "bench_before_after.sh"), "HEAD", "1", *overrides], cwd=repo,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    headers = [line for line in done.stdout.splitlines() if line.startswith("=== ")]
    assert [h.split(",")[1].split()[0] for h in headers] == ["before", "after"]
    assert done.stdout.count("train_images_per_s=") == 2 and done.stdout.count("precision=32-true") == 2
    assert subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout == worktrees
    refused = subprocess.run(["bash", str(SCRIPTS / "bench_before_after.sh"), "HEAD", "1", "no_such_knob=1"],
                             cwd=repo, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "no_such_knob" in refused.stderr  # the run's own error, not silence
    assert subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout == worktrees


def test_tree_memory_adds_up_the_processes_a_command_starts() -> None:
    # A parent holding 100 MB that starts a child holding 200 MB: the tree's peak counts both.
    child = "import time; block = b'x' * (200 * 2**20); time.sleep(1.5)"  # written, so resident
    parent = f"import subprocess, sys; block = b'x' * (100 * 2**20); subprocess.run([sys.executable, '-c', {child!r}])"
    done = subprocess.run([sys.executable, str(SCRIPTS / "tree_memory.py"), sys.executable, "-c", parent],
                          capture_output=True, text=True, timeout=60)
    found = re.fullmatch(r"[\d.]+ s, exit 0; peak PSS of the process tree (\d+) MB, at most (\d+) processes\n",
                         done.stdout)
    assert found, done.stdout + done.stderr
    assert 300 <= int(found[1]) < 400 and int(found[2]) == 2


def test_one_face_latency_times_each_graph_and_lists_openvino_kernels(trained_runs: list[Path], fer_csv: Path,
                                                                      tmp_path: Path, monkeypatch, capsys) -> None:
    # In this process (the script's imports are the suite's already): a subprocess would add seconds of start-up.
    script = load_script("one_face_latency")
    monkeypatch.chdir(tmp_path)  # its data cache goes where fer-export's would: outputs/cache under the cwd
    monkeypatch.setenv("FER2013_CSV", str(fer_csv))
    script.main([str(best_checkpoint(trained_runs[0])), "20"])
    out = capsys.readouterr().out
    timed = [line.split() for line in out.splitlines() if line.startswith("round ")]
    assert [" ".join(row[2:4]) for row in timed] == ["float, bf16", "float, f32", "int8, f32"] * 2
    assert all(0 < float(row[5]) <= float(row[8]) for row in timed)  # p50 <= p95, both positive
    kernels = out.split("the slowest:\n")[1].splitlines()
    assert kernels and any("Convolution" in line for line in kernels)
    tta = RunDir(trained_runs[0]).tta()  # the last line: fer-predict's own model for the checkpoint, its TTA
    last = out.splitlines()[-1]
    runtime = chosen_runtime(AUTO, inference_bf16("auto", "cpu"))  # no int8 copy beside this checkpoint
    assert re.match(rf"as fer-predict calls it, checkpoint .* on {runtime}.*, TTA {tta}, temperature [0-9.]+: "
                    r"p50 [0-9.]+ ms", last)
    with pytest.raises(SystemExit, match=r"^usage:"):
        script.main([])


@pytest.mark.parametrize(("override", "error"), [
    ("runtimes=[openvino,tensorrt]", r"runtimes must list one or more of auto, torch, torch_compile, onnxruntime, "
                                     r"openvino, onnxruntime_int8, openvino_int8; got \['openvino', 'tensorrt'\]"),
    ("runtimes=[]", "runtimes must list one or more of"),
    ("epochs=0", "epochs must be a whole number, at least 1; got 0"),
    ("runtimes=tensorrt", r"runtimes must list one or more of .*; got \['tensorrt'\]"),  # one name: a list of one
    ("warmup_batches=-1", "warmup_batches must be a whole number of batches, at least 0; got -1"),
    ("profile_batches=x", "profile_batches must be a whole number of steps, at least 0; got 'x'"),
    ("keras=maybe", "keras must be true or false, got 'maybe'"),
    ("infer_batch=0", "infer_batch must be a whole number of faces, at least 1; got 0"),
])
def test_bench_knobs_are_checked_before_the_timed_training(override: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):  # the CSV is not there: nothing was read or trained
        bench(compose_config("bench", ["data.csv_path=/no/such.csv", override]))
