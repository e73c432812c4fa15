"""The commands run as a user runs them: train.py and the console scripts, from a checkout and from a wheel."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import site
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import console_script, tiny_run_overrides
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from fer_lightning.fer2013 import CLASS_NAMES
from fer_lightning.training.run_dir import LOGIT_FILES, RunDir
from fer_lightning.training.sweep_summary import sweep_figure

if sys.version_info >= (3, 11):
    import tomllib
else:  # CPython 3.10: the same parser from PyPI (the dev extra installs it there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def run_train(tmp_path: Path, *overrides: str, multirun: bool = False,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *(["-m"] if multirun else []), f"paths.log_dir={tmp_path / 'outputs'}",
         "callbacks.progress_bar=null", "trainer.precision=32-true", "fuse_tails=false", *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )


def without_torch(tmp_path: Path) -> dict[str, str]:
    """An environment in which importing torch or Lightning fails: errors in the arguments must be reported
    before the 6-10 s those imports take (fer_lightning/cli/__init__.py)."""
    blocker = tmp_path / "no_torch"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('torch', 'lightning'):\n"
        "            raise ModuleNotFoundError(f'{name} imported before the arguments were checked', name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)])}


@pytest.mark.parametrize("command", ["fer-train", "fer-export", "fer-stack"])
def test_help_opens_with_what_the_command_does_and_how_it_is_called(tmp_path: Path, command: str) -> None:
    result = subprocess.run([console_script(command), "--help"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env=without_torch(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"{command} ")  # the YAML's opening comment, not "... is powered by Hydra."
    assert "== Config ==" in result.stdout and "task_name:" in result.stdout


def test_missing_csv_is_one_clear_line(tmp_path: Path) -> None:
    result = run_train(tmp_path, f"data.csv_path={tmp_path / 'nowhere.csv'}", env=without_torch(tmp_path))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: FER-2013 CSV not found") and "FER2013_CSV" in last
    assert "Traceback" not in result.stderr
    unset = run_train(tmp_path, "data.csv_path=null", env=without_torch(tmp_path))  # as without FER2013_CSV
    assert unset.stderr.strip().splitlines()[-1].startswith("error: FER-2013 CSV not named (FER2013_CSV is not set)")


def test_commands_check_their_inputs_before_torch(tmp_path: Path, fer_csv: Path) -> None:
    """Run dirs, search keys, models, checkpoints, inputs and CSVs that are not there fail in a second, as
    fer-train's CSV does: one line each, with torch unimportable."""
    finished = tmp_path / "finished"
    finished.mkdir()
    for split in LOGIT_FILES:
        RunDir(finished).save_logits(split, np.zeros((3, len(CLASS_NAMES))), np.arange(3))
    shutil.copytree(finished, tmp_path / "another")
    nowhere, missing, onnx = tmp_path / "nowhere.csv", tmp_path / "missing", tmp_path / "model.onnx"
    onnx.write_bytes(b"never loaded: the inputs are checked first")  # also a checkpoint that is there
    stack, tune = [sys.executable, str(ROOT / "stack.py")], [sys.executable, str(ROOT / "tune.py")]
    predict = console_script("fer-predict")
    predict_onnx = [predict, f"onnx={onnx}", f"inputs={finished}"]  # a model and inputs that are there
    csv_missing = f"FER-2013 CSV not found at '{nowhere}'"
    commands = [  # (what the error line says, the command)
        (f"{missing}: no such run directory", [*stack, f"runs=[{missing}]"]),
        ("stacking needs at least two runs, got 1", [*stack, f"runs=[{finished}]"]),
        ("cv_folds must be a whole number of folds, at least 2; got 1", [*stack, f"runs=[{finished}]", "cv_folds=1"]),
        ("teacher must be true or false, got 'maybe'", [*stack, f"runs=[{finished}]", "teacher=maybe"]),
        (f"runs names {finished} twice; each run may count once", [*stack, f"runs=[{finished},{finished}]"]),
        (csv_missing, [*stack, f"runs=[{finished},{tmp_path / 'another'}]", "teacher=true", f"csv_path={nowhere}"]),
        ("search space keys name no value in the training config: model.nope",
         [*tune, f'train_args=["data.csv_path={fer_csv}"]', "+space={model.nope: {choices: [1]}}"]),
        (csv_missing, [*tune, f'train_args=["data.csv_path={nowhere}"]']),
        ("n_trials must be a whole number of trials for the study to hold, at least 0; got 'ten'",
         [*tune, "n_trials=ten"]),
        ("seed must be a whole number, at least 0; got 'abc'", [*tune, "seed=abc"]),
        ("timeout must be a number above 0 (seconds after which no trial starts; null: none), got -1",
         [*tune, "timeout=-1"]),
        ("name exactly one model", [predict, f"inputs={finished}"]),
        (f"{missing}.ckpt: no such checkpoint file", [predict, f"ckpt={missing}.ckpt", f"inputs={finished}"]),
        (f"{finished}: a folder without checkpoints/last.ckpt; expected a checkpoint file or the run dir train.py "
         "wrote it in", [predict, f"ckpt={finished}", f"inputs={finished}"]),
        (f"nothing to predict: {missing}: no such file or folder; {finished}: empty folder",
         [predict, f"onnx={onnx}", f"inputs=[{missing},{finished}]"]),
        ("every_n_frames must be a whole number, at least 1; got 0", [*predict_onnx, "every_n_frames=0"]),
        ("batch_size must be a whole number, at least 1; got -1", [*predict_onnx, "batch_size=-1"]),
        ("show must be a whole number of faces, at least 0; got 'all'", [*predict_onnx, "show=all"]),
        ("explain must be true or false, got 'yes'", [*predict_onnx, "explain=yes"]),
        ("precision must be one of auto, 32-true, bf16-mixed, got 'fp8'", [*predict_onnx, "precision=fp8"]),
        ("runtime must be auto or one of torch, torch_compile, onnxruntime, openvino, got 'tensorrt'",
         [predict, f"ckpt={onnx}", f"inputs={finished}", "runtime=tensorrt"]),
        ("runtime for an ONNX file must be auto or one of onnxruntime, openvino, got 'torch'",
         [*predict_onnx, "runtime=torch"]),
        ("video.tracking.min_overlap must be a number from 0 to 1 (intersection over union), got 2",
         [*predict_onnx, "video.tracking.min_overlap=2"]),
        ("video.smooth_frames must be a whole number of sampled frames, at least 1; got 0",
         [*predict_onnx, "video.smooth_frames=0"]),
        ("margin must be a number above -0.5 (a share of the face's side added on each side), got 'abc'",
         [*predict_onnx, "margin=abc"]),
        ("level_eyes_above must be a number at least 0 (degrees; or null for never), got -5",
         [*predict_onnx, "level_eyes_above=-5"]),
        ("temperature must be a number above 0 (what the logits are divided by; or auto, the one fitted on the run's "
         "PublicTest), got 0", [*predict_onnx, "temperature=0"]),
        (csv_missing, [console_script("fer-analyze"), f"csv_path={nowhere}"]),
        ("pictures must be a whole number, at least 1; got 0",
         [console_script("fer-photo-sheets"), f"csv_path={fer_csv}", f"out={missing}", "pictures=0"]),
        ("seed must be a whole number, at least 0; got 'abc'",
         [console_script("fer-photo-sheets"), f"csv_path={fer_csv}", f"out={missing}", "seed=abc"]),
        ("keep_freed_memory must be true or false, got 'maybe'",
         [console_script("fer-analyze"), f"csv_path={fer_csv}", "keep_freed_memory=maybe"]),
        (f"{fer_csv}: not a fer-predict predictions.csv (no column file, h, status, w, x, y)",
         [console_script("fer-score-sheets"), f"predictions={fer_csv}", f"truth={fer_csv}"]),
        (f"{missing}.ckpt: no such checkpoint file",
         [console_script("fer-export"), f"ckpt={missing}.ckpt", f"csv_path={fer_csv}"]),
        (f"{finished}: a folder without checkpoints/last.ckpt",
         [console_script("fer-export"), f"ckpt={finished}", f"csv_path={fer_csv}"]),
        (csv_missing, [console_script("fer-export"), f"ckpt={onnx}", f"csv_path={nowhere}"]),
        (f"{missing}.ckpt: no such checkpoint file",
         [console_script("fer-train"), f"ckpt_path={missing}.ckpt", f"data.csv_path={fer_csv}"]),
    ]
    env = without_torch(tmp_path)

    def run(command: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([*command, f"paths.log_dir={tmp_path / 'outputs'}"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, env=env)

    with ThreadPoolExecutor(2) as pool:
        results = pool.map(run, [command for _, command in commands])
    for (expected, _), result in zip(commands, results, strict=True):
        assert result.returncode == 1, result.stderr[-2000:]
        assert result.stderr.strip().splitlines()[-1].startswith("error: "), result.stderr[-2000:]
        assert expected in result.stderr and "Traceback" not in result.stderr


def test_a_trainer_setting_lightning_refuses_is_one_line_naming_the_trainer(tmp_path: Path, fer_csv: Path) -> None:
    result = run_train(tmp_path, f"data.csv_path={fer_csv}", "trainer.accelerator=cpu", "trainer.devices=0")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: trainer: ") and "devices=0" in last  # Lightning's reason, on one line


def test_uncreatable_output_dir_is_one_clear_line_for_runs_and_sweeps(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    with ThreadPoolExecutor(2) as pool:  # a run and a sweep at once: each is mostly Python starting up
        results = list(pool.map(lambda multirun: run_train(
            tmp_path, f"paths.log_dir={tmp_path / 'a_file' / 'outputs'}", multirun=multirun,
            env=without_torch(tmp_path)), (False, True)))
    for result in results:
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1].startswith(
            f"error: cannot create the output dir {tmp_path / 'a_file' / 'outputs'}/train/")
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]],
                         ids=["one_after_another", "joblib"])
def test_multirun_over_both_models(tmp_path: Path, fer_csv: Path, launcher: list[str]) -> None:
    result = run_train(tmp_path, "model=relu,leaky", f"data.csv_path={fer_csv}", "data.batch_size=32",
                       "+trainer.fast_dev_run=true", *launcher, multirun=True)
    assert result.returncode == 0, result.stderr[-2000:]
    if launcher:  # both jobs at once, each in its own worker process
        assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    # Lightning's lines once per job (its own console handler had printed each beside Hydra's), and not its
    # advertisement or its warning about an API of torch's that it uses
    output = result.stdout + result.stderr
    assert output.count("Seed set to") == 2
    assert "Tip:" not in output and "LeafSpec" not in output
    jobs = sorted((tmp_path / "outputs" / "train" / "multiruns").glob("*/*/metrics.json"))
    assert [p.parent.name for p in jobs] == ["0", "1"]
    overrides = [(p.parent / ".hydra" / "overrides.yaml").read_text() for p in jobs]
    assert "model=relu" in overrides[0] and "model=leaky" in overrides[1]
    summary = pd.read_csv(jobs[0].parents[1] / "sweep_summary.csv")
    assert (jobs[0].parents[1] / "sweep_summary.png").is_file()
    assert summary["job"].tolist() == [0, 1]
    assert summary["overrides"].str.contains("model=relu").tolist() == [True, False]
    assert summary["test/acc"].between(0, 1).all()
    assert (summary["test/acc_low"] < summary["test/acc_high"]).all()
    assert summary.apply(lambda job: job["test/acc_low"] <= job["test/acc"] <= job["test/acc_high"], axis=1).all()
    assert summary["forward_mflops_per_face"].tolist() == [133.756, 133.756]  # the study's two nets cost alike
    events = EventAccumulator(str(jobs[1].parent / "tensorboard")).Reload()
    start = events.summary_metadata["_hparams_/session_start_info"].plugin_data.content
    assert HParamsPluginData.FromString(start).session_start_info.hparams["model"].string_value == "leaky"


def test_the_sweep_figure_shows_each_job_with_both_splits() -> None:
    table = pd.DataFrame({"job": [0, 1], "overrides": ["model=relu seed=1", "model=leaky seed=1"],
                          "val/acc_best": [0.61, 0.66], "test/acc": [0.62, 0.64], "test/acc_low": [0.60, 0.62],
                          "test/acc_high": [0.64, 0.66]})
    figure = sweep_figure(table)
    ax = figure.axes[0]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["1: model=leaky seed=1", "0: model=relu seed=1"]
    assert [bar.get_width() for bar in ax.patches] == pytest.approx([64, 62])  # PrivateTest, job 0 at the top
    assert ax.collections[-1].get_offsets()[:, 0].tolist() == pytest.approx([66, 61])  # PublicTest's diamonds
    low, high = ax.get_xlim()
    assert low <= 58 and high >= 70  # room for every bar, interval and diamond


def test_runs_started_together_get_a_run_dir_each(tmp_path: Path, fer_csv: Path) -> None:
    """Run dirs were named for the second alone: two runs started in the same second shared one, and the
    second's .hydra/ files replaced the first's (its resume= would have read the other run's overrides)."""
    outputs = tmp_path / "outputs"
    runs = {seed: subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), f"paths.log_dir={outputs}", f"data.csv_path={fer_csv}",
         f"paths.cache_dir={tmp_path / 'cache'}", "callbacks.progress_bar=null", "trainer.precision=32-true",
         "fuse_tails=false", "data.batch_size=32", "+trainer.fast_dev_run=true", f"seed={seed}"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for seed in (1, 2)}
    for process in runs.values():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-2000:]
    for seed, process in runs.items():
        [run_dir] = (outputs / "train" / "runs").glob(f"*_{process.pid}")
        assert f"seed={seed}" in (run_dir / ".hydra" / "overrides.yaml").read_text()
        assert (run_dir / "metrics.json").is_file()


def test_every_command_is_a_console_script_of_a_hydra_app() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    installed = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts")
                 if ep.name.startswith("fer-")}
    assert set(declared) == set(installed) >= {"fer-train", "fer-tune", "fer-stack", "fer-predict", "fer-export",
                                               "fer-bench", "fer-analyze", "fer-photo-sheets", "fer-score-sheets"}
    for name, entry in installed.items():
        assert entry.value.startswith("fer_lightning.cli."), name
        assert callable(entry.load()), name


def test_the_wheel_carries_its_configs_and_runs_outside_the_checkout(tmp_path: Path, fer_csv: Path) -> None:
    """Built and installed like a release (not editable), a command finds conf/ inside the package."""
    # Built from a copy of the tracked sources: an in-tree build would reuse (and ship) a stale build/ folder.
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(source)], check=True, capture_output=True, timeout=300)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # The dependencies come from this environment, a virtual one or not (--system-site-packages would give a
    # venv's base interpreter's instead): its package folders, listed in a .pth file, follow the new venv's own.
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c", where], capture_output=True, text=True,
                                  check=True).stdout.strip())
    (purelib / "outer_environment.pth").write_text("\n".join([*site.getsitepackages(), site.getusersitepackages()]))
    subprocess.run([str(venv / "bin" / "pip"), "install", "--no-deps", "-q", *map(str, wheels.glob("*.whl"))],
                   check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    conf_dir = "import fer_lightning.cli.common as common; print(common.CONF_DIR)"
    where = subprocess.run([str(venv / "bin" / "python"), "-c", conf_dir], cwd=elsewhere, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv) and (Path(where) / "train.yaml").is_file()
    run_dir = elsewhere / "run"
    result = subprocess.run([str(venv / "bin" / "fer-train"), *tiny_run_overrides(fer_csv, run_dir, tmp_path / "cache"),
                             f"paths.log_dir={elsewhere / 'outputs'}"], cwd=elsewhere, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run_dir / "summary.json").is_file() and (run_dir / "metrics.json").is_file()


def test_commands_that_need_no_net_start_without_torch() -> None:
    """Hydra builds every command's callbacks (conf/hydra/default.yaml), so their modules, like the photo-sheet
    commands', must not bring torch and Lightning: ~7 s of a 1.4-s command's start."""
    code = ("import sys, fer_lightning.cli.photo_sheets, fer_lightning.training.sweep_summary; "
            "print(sorted(name for name in ('torch', 'lightning') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_predicting_with_a_checkpoint_loads_neither_lightning_nor_scikit_learn() -> None:
    """fer-predict reads checkpoints and runs nets; Lightning is for training and scikit-learn for stack= only, and
    importing them took fer-predict on one face from 5 s to 9 (docs/results.md)."""
    code = ("import sys, fer_lightning.predict.predictor; "
            "print(sorted(name for name in ('lightning', 'sklearn') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_tensorboard_files_are_written_without_importing_tensorflow(tmp_path: Path) -> None:
    """Where TensorFlow is installed, TensorBoard writes through it unless told otherwise (fer_lightning/__init__.py):
    seconds and hundreds of MB at every command's start. A stand-in TensorFlow that fails on import shows whether
    anything still reaches for it, whether or not the real one is installed here."""
    stand_in = tmp_path / "site" / "tensorflow"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("raise RuntimeError('TensorFlow was imported')\n")
    code = ("import sys, fer_lightning\n"
            "from torch.utils.tensorboard import SummaryWriter\n"
            "with SummaryWriter(sys.argv[1]) as writer:\n"
            "    writer.add_scalar('val/acc', 0.5, 0)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "tb")], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    scalars = EventAccumulator(str(tmp_path / "tb")).Reload().Scalars("val/acc")
    assert [(s.step, s.value) for s in scalars] == [(0, 0.5)]


def test_photo_sheets_are_made_and_scored_by_their_commands(tmp_path: Path, fer_csv: Path) -> None:
    photos = tmp_path / "photos"
    made = subprocess.run([console_script("fer-photo-sheets"), f"csv_path={fer_csv}", f"out={photos}", "pictures=4",
                           "split=PublicTest", f"paths.log_dir={tmp_path / 'outputs'}"],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr[-2000:]
    truth = pd.read_csv(photos / "truth.csv")
    assert len(truth) == 12 and len(list(photos.glob("*.jpg"))) == 4 and set(truth.label) <= set(CLASS_NAMES)
    rows = pd.read_csv(fer_csv).iloc[truth.line - 2]  # each face's CSV line (the header is line 1)
    assert (rows.Usage == "PublicTest").all() and ([CLASS_NAMES[e] for e in rows.emotion] == truth.label).all()
    assert truth.unseen.dtype == bool
    perfect = truth.assign(status="ok", emotion=truth.label)  # every face found and named right
    perfect.to_csv(tmp_path / "predictions.csv", index=False)
    scored = subprocess.run([console_script("fer-score-sheets"), f"predictions={tmp_path / 'predictions.csv'}",
                             f"truth={photos / 'truth.csv'}", f"hydra.run.dir={tmp_path / 'score'}"],
                            capture_output=True, text=True, timeout=120)
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert "detection_rate=1" in scored.stdout and "accuracy_on_detected=1" in scored.stdout
    assert f"detected_unseen={truth.unseen.sum()}" in scored.stdout
    assert (tmp_path / "score" / "score.json").is_file()
    refused = subprocess.run([console_script("fer-photo-sheets"), f"csv_path={fer_csv}", "split=Training",
                              f"paths.log_dir={tmp_path / 'outputs'}"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1].startswith("error: split must be")
