"""fer-predict and fer-export: faces found and labelled through the batch path, bad inputs named one by one,
videos sampled, stacks and ONNX files used like checkpoints, ONNX output equal to PyTorch's."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import onnx
import pandas as pd
import pillow_heif
import pytest
from conftest import REAL_CSV, best_checkpoint, compose_config, console_script, scene_with_faces, stack_cfg
from hydra import compose, initialize_config_dir
from PIL import Image

from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.ensemble.stack import stack
from fer_lightning.errors import ConfigError, FerError
from fer_lightning.faces.detectors import Box, YuNetDetector, make_detector
from fer_lightning.faces.finder import FaceFinder
from fer_lightning.fer2013 import CLASS_NAMES
from fer_lightning.inference import onnx_file
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.onnx_file import OnnxFaceClassifier, export, parity
from fer_lightning.inference.runtime_names import AUTO
from fer_lightning.inference.runtimes import chosen_runtime
from fer_lightning.inference.timing import timings
from fer_lightning.machine import cpu_name
from fer_lightning.precision import inference_bf16
from fer_lightning.predict import predictor as predictor_module
from fer_lightning.predict.annotation import AnnotatedVideos
from fer_lightning.predict.loading import load_model
from fer_lightning.predict.media import MediaError, pillow_array, read_image
from fer_lightning.predict.occlusion import explanation_picture, occlusion_maps
from fer_lightning.predict.overview import Overview
from fer_lightning.predict.photo_sheets import make_sheets, score
from fer_lightning.predict.predictor import Predictor, mirrored, predict
from fer_lightning.predict.reader import EmotionReader
from fer_lightning.predict.request import check_settings, named_model
from fer_lightning.training.run_dir import RunDir, RunSummary

PROBA = [f"p_{name}" for name in CLASS_NAMES]


def private_faces(trained_runs: list[Path]) -> np.ndarray:
    return load_fer2013(trained_runs[0].parent / "fer_synthetic.csv").split("PrivateTest")[0]


def run_predict(tmp_path: Path, *overrides: str) -> tuple[dict, pd.DataFrame]:
    summary = predict(compose_config("predict", [f"paths.output_dir={tmp_path / 'out'}", "progress=false",
                                                 "precision=32-true", *overrides]))
    return summary, pd.read_csv(tmp_path / "out" / "predictions.csv")


def terminal_rows(printed: str, columns: int) -> list[list[str]]:
    """The first ``columns`` cells of each row of the tables fer-predict printed."""
    return [[cell.strip() for cell in line.strip("│").split("│")[:columns]] for line in printed.splitlines()
            if line.startswith("│")]


def write_faces(folder: Path, faces: np.ndarray) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"face_{i:02d}.png" for i in range(len(faces))]
    for path, face in zip(paths, faces, strict=True):
        cv2.imwrite(str(path), face)
    return paths


def test_48px_faces_skip_detection_and_match_the_checkpoint(trained_runs: list[Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    faces = private_faces(trained_runs)[:12]
    write_faces(tmp_path / "faces", faces)
    ckpt = best_checkpoint(trained_runs[0])
    summary, table = run_predict(tmp_path, f"ckpt={ckpt}", f"inputs={tmp_path / 'faces'}", "batch_size=5", "show=5")
    printed = capsys.readouterr().out  # the terminal's table: the first 5 faces, then where the rest are
    assert terminal_rows(printed, 3) == [[f"face_{i:02d}.png", "0", table.emotion[i]] for i in range(5)]
    assert printed.splitlines()[-1] == f"7 more rows in {tmp_path / 'out' / 'predictions.csv'}"
    assert summary["faces"] == 12 and summary["failed"] == 0
    assert (table[["x", "y", "w", "h"]].to_numpy() == [0, 0, 48, 48]).all()
    run_summary = json.loads((trained_runs[0] / "summary.json").read_text())  # tta=auto, temperature=auto: the run's
    expected = FaceClassifier.from_checkpoint(ckpt, tta=run_summary["tta"],
                                              temperature=run_summary["temperature"]).predict_proba(faces)
    np.testing.assert_allclose(table[PROBA].to_numpy(), expected, atol=1e-4)  # rows kept their order
    assert table.emotion.tolist() == [CLASS_NAMES[i] for i in expected.argmax(1)]
    assert len(json.loads((tmp_path / "out" / "predictions.json").read_text())["rows"]) == 12
    assert len(list((tmp_path / "out" / "annotated").rglob("face_*.png"))) == 12
    assert cv2.imread(str(tmp_path / "out" / "faces.png")) is not None  # the overview of the photos' faces


def test_bad_inputs_are_named_and_the_rest_still_predicted(trained_runs: list[Path], tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    good = write_faces(photos, private_faces(trained_runs)[:2])
    (photos / "notes.jpg").write_text("not an image")
    truncated = photos / "cut.png"
    truncated.write_bytes(good[0].read_bytes()[:200])
    (tmp_path / "empty").mkdir()
    blank = photos / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 200), 128, np.uint8))
    result = subprocess.run(
        [console_script("fer-predict"), f"ckpt={best_checkpoint(trained_runs[0])}",
         f'inputs=[{photos},{tmp_path / "empty"},{tmp_path / "missing.png"},"https://example.com/face.jpg"]',
         f"hydra.run.dir={tmp_path / 'out'}",
         "progress=false", "detect=always"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    written = json.loads((tmp_path / "out" / "predictions.json").read_text())
    runtime = chosen_runtime(AUTO, inference_bf16("auto", "cpu"))  # runtime=auto, precision=auto, no int8 copy
    assert f" on {runtime}" in written["model"]
    assert f"Model: {written['model']}" in (tmp_path / "out" / "predict.log").read_text()  # what auto picked, said
    errors = written["errors"]
    assert errors == [f"{tmp_path / 'empty'}: empty folder, no images or videos in it",
                      f"{tmp_path / 'missing.png'}: no such file or folder",
                      "https://example.com/face.jpg: a URL; fer-predict reads files on this machine (download it "
                      "first)",
                      f"{truncated}: unreadable or truncated image (image file is truncated)",
                      f"{photos / 'notes.jpg'}: not an image (Pillow does not recognise its format)"]
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert table.loc[table.file == str(blank), "status"].tolist() == ["no_face"]  # a result, not a failure
    assert set(table.file) == {str(p) for p in good} | {str(blank)}
    assert result.stderr.strip().splitlines()[-1] == \
        "error: 5 input(s) failed (each named above); the rest were predicted"


class FailsOnThirdBatch:
    """A stand-in model that answers twice, then fails as a killed or crashed run would."""

    def __init__(self) -> None:
        self.batches = 0

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        self.batches += 1
        if self.batches == 3:
            raise KeyboardInterrupt
        return np.full((len(images), len(CLASS_NAMES)), 1 / len(CLASS_NAMES))


def test_phone_photos_are_read_upright_and_heic_ones_too(trained_runs: list[Path], tmp_path: Path) -> None:
    """A phone stores a photo as its sensor lay and tags how to turn it for viewing (EXIF orientation 6: a quarter
    turn clockwise); an iPhone's photos are HEIC. Both are read as a viewer shows them, so a face is found upright and
    its box fits the picture as seen."""
    upright = scene_with_faces([(40, 60, 0.5)], size=(240, 320))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    Image.fromarray(np.rot90(upright)).save(tmp_path / "sideways.jpg", exif=exif, quality=95)
    pillow_heif.register_heif_opener()
    Image.fromarray(np.stack([upright] * 3, axis=-1)).save(tmp_path / "iphone.heic", quality=95)
    for name in ("sideways.jpg", "iphone.heic"):
        seen = read_image(tmp_path / name)
        gray = seen if seen.ndim == 2 else cv2.cvtColor(seen, cv2.COLOR_BGR2GRAY)
        assert gray.shape == upright.shape and np.abs(gray.astype(int) - upright).mean() < 3, name
    _, table = run_predict(tmp_path, f"ckpt={best_checkpoint(trained_runs[0])}", f"inputs={tmp_path}")
    assert sorted(Path(file).name for file in table.file) == ["iphone.heic", "sideways.jpg"]
    assert (table.status == "ok").all() and (table.x + table.w <= 320).all() and (table.y + table.h <= 240).all()
    assert sorted(path.name for path in (tmp_path / "out" / "annotated").rglob("*.*")) == \
        ["iphone.heic.png", "sideways.jpg"]
    reader = EmotionReader.load(best_checkpoint(trained_runs[0]), overrides=["precision=32-true"])
    with Image.open(tmp_path / "sideways.jpg") as opened:  # the same photo as a Pillow image, from Python
        [face] = reader.read(opened)
        assert opened.size == (240, 320)  # the caller's image is left as it was
    sideways = table[table.file.str.endswith("sideways.jpg")]
    assert [face.box.x, face.box.y, face.box.w, face.box.h] == sideways[["x", "y", "w", "h"]].iloc[0].tolist()


def test_jpegs_read_by_opencv_match_pillows_reading_and_only_whole_ones_are(tmp_path: Path) -> None:
    """Whole JPEGs are decoded by OpenCV (faster); the pixels and the turn for each EXIF orientation must be Pillow's,
    gray must stay 2-D, and a file cut short or with data after its image must go to Pillow, which judges it."""
    picture = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"turned_{orientation}.jpg"
        Image.fromarray(picture).save(path, exif=exif, quality=90)
        with Image.open(path) as opened:
            opened.load()
            np.testing.assert_array_equal(read_image(path), pillow_array(opened), err_msg=path.name)
    Image.fromarray(picture[..., 0]).save(tmp_path / "gray.jpeg")
    assert read_image(tmp_path / "gray.jpeg").shape == (60, 80)
    whole = (tmp_path / "turned_1.jpg").read_bytes()
    (tmp_path / "motion.jpg").write_bytes(whole + b"\x00\x00\x00\x18ftypmp42 a video after the picture")
    np.testing.assert_array_equal(read_image(tmp_path / "motion.jpg"), read_image(tmp_path / "turned_1.jpg"))
    (tmp_path / "cut.jpg").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(MediaError, match=r"cut\.jpg: unreadable or truncated image"):
        read_image(tmp_path / "cut.jpg")


def test_the_overview_keeps_each_emotions_surest_photo_faces() -> None:
    happy = CLASS_NAMES.index("Happy")
    proba = np.full((5, len(CLASS_NAMES)), 0.01)
    proba[:4, happy] = [0.5, 0.9, 0.7, 0.6]
    proba[4, 0] = 0.8  # an Angry face
    crops = [np.full((48, 48), 10 * i, np.uint8) for i in range(5)]  # face i is all grey level 10 i
    overview = Overview(per_emotion=2)
    overview.add(Path("a_long_photo_name.jpg"), crops[:3], proba[:3])
    overview.add(Path("b.png"), crops[3:], proba[3:])
    assert overview.counts == {happy: 4, 0: 1}
    rows = np.array(overview.figure().axes).reshape(len(CLASS_NAMES), 2)
    assert [ax.get_title() for ax in rows[happy]] == ["a_long_photo_n 90%", "a_long_photo_n 70%"]  # surest first
    assert [int(ax.get_images()[0].get_array()[0, 0]) for ax in rows[happy]] == [10, 20]
    assert rows[happy][0].get_ylabel() == "Happy\n4" and rows[0][0].get_title() == "b.png 80%"
    assert not any(ax.get_images() for ax in rows[1])  # no face was called Disgust


def test_a_16_bit_photo_is_scaled_to_8_bits_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    Image.fromarray(ramp.astype(np.int32) // 257).save(tmp_path / "wide.tif")  # 32-bit values of 0-255
    np.testing.assert_allclose(read_image(tmp_path / "deep.png"), ramp / 257, atol=1)
    np.testing.assert_allclose(read_image(tmp_path / "wide.tif"), ramp // 257, atol=0)


def test_a_stopped_run_keeps_the_batches_it_predicted(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("an earlier run's rows\n")  # a run dir used again starts empty
    predictor = Predictor(FailsOnThirdBatch(), FaceFinder(make_detector("haar"), "auto", 0.0, None), out,
                          batch_size=2, annotate=False)
    faces = np.random.default_rng(0).integers(0, 256, (7, 48, 48), dtype=np.uint8)
    with pytest.raises(KeyboardInterrupt):
        for i, face in enumerate(faces):
            predictor.add(tmp_path / f"face_{i}.png", None, face)
    table = pd.read_csv(out / "predictions.csv")
    assert table.file.tolist() == [str(tmp_path / f"face_{i}.png") for i in range(4)]
    assert table.columns[:6].tolist() == ["file", "frame", "time_s", "face", "face_id", "status"]
    np.testing.assert_allclose(table[PROBA].to_numpy(), 1 / len(CLASS_NAMES), atol=1e-4)
    # Stopped while it writes a batch's annotated copies: that batch's rows are in already.
    predictor = Predictor(FailsOnThirdBatch(), predictor.finder, out, batch_size=2)

    def stop(*args: object) -> None:
        raise KeyboardInterrupt

    predictor._write_annotated = stop  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        for i, face in enumerate(faces):
            predictor.add(tmp_path / f"face_{i}.png", None, face)
    assert pd.read_csv(out / "predictions.csv").file.tolist() == [str(tmp_path / f"face_{i}.png") for i in range(2)]


def test_a_stopped_runs_annotated_video_plays_to_its_last_frame_written(tmp_path: Path, monkeypatch) -> None:
    """A WebM file gets its length and index when it is closed; a run stopped midway closes it on the way out."""
    monkeypatch.setattr(predictor_module, "load_model", lambda cfg: (FailsOnThirdBatch(), "a stand-in"))
    faces = np.random.default_rng(0).integers(0, 256, (9, 48, 48), dtype=np.uint8)  # 48x48: each frame is one face
    video = write_video(tmp_path / "clip.avi", list(faces))
    with pytest.raises(KeyboardInterrupt) as stopped:  # its traceback keeps the predictor, as a caller's handler would
        run_predict(tmp_path, "ckpt=unused", f"inputs={video}", "every_n_frames=1", "batch_size=2")
    assert stopped.traceback  # alive while the copy is read: closed by fer-predict, not by the garbage collector
    copy = cv2.VideoCapture(str(tmp_path / "out" / "annotated" / mirrored(Path(), video).with_suffix(".avi.webm")))
    assert copy.get(cv2.CAP_PROP_FRAME_COUNT) == 4 and copy.read()[1].shape == (48, 48, 3)  # two batches of two


def test_a_video_copy_is_at_most_max_side_and_keeps_a_frame_of_another_size(tmp_path: Path) -> None:
    videos = AnnotatedVideos()
    videos.start(Path("stream.avi"), tmp_path / "stream", 5.0)
    videos.start(Path("4k.mp4"), tmp_path / "4k.mp4", 5.0)
    for size in [(48, 64), (96, 128), (48, 64)]:  # the stream's resolution changes for one frame
        videos.write(Path("stream.avi"), np.full((*size, 3), 200, np.uint8))
    videos.write(Path("4k.mp4"), np.full((2160, 3840, 3), 200, np.uint8))
    videos.close()
    copy = cv2.VideoCapture(str(tmp_path / "stream.webm"))
    assert copy.get(cv2.CAP_PROP_FRAME_COUNT) == 3 and copy.read()[1].shape == (48, 64, 3)
    assert cv2.VideoCapture(str(tmp_path / "4k.mp4.webm")).read()[1].shape == (720, 1280, 3)


def test_predict_before_after_runs_both_commits_in_turn_and_removes_its_worktree(trained_runs: list[Path],
                                                                                tmp_path: Path) -> None:
    repo, script = Path(__file__).resolve().parents[1], "docs/scripts/predict_before_after.sh"
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout
    face = write_faces(tmp_path, private_faces(trained_runs)[:1])[0]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where its worktree and run dirs go
    done = subprocess.run(["bash", script, "HEAD", "1", f"ckpt={best_checkpoint(trained_runs[0]).resolve()}",
                           f"inputs={face}"], cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = [re.match(r"(before|after) \(\w+\) [\d:]+ UTC: [\d.]+ s wall, [\d.]+ s CPU, \d+ MB; (\d+) rows, md5 (\w+)$",
                     line) for line in done.stdout.splitlines()[1:]]
    assert [(run[1], run[2]) for run in runs if run] == [("before", "1"), ("after", "1")], done.stdout
    assert runs[0][3] == runs[1][3]  # the same predictions.csv on both sides
    refused = subprocess.run(["bash", script, "HEAD", "1", "ckpt=nowhere.ckpt", f"inputs={face}"], cwd=repo,
                             capture_output=True, text=True, timeout=120, env=env)
    assert refused.returncode == 1 and "nowhere.ckpt: no such checkpoint file" in refused.stderr
    assert subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout == worktrees


def test_a_video_copy_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    (tmp_path / "clip.webm").mkdir()  # a folder where the file would go
    videos = AnnotatedVideos()
    videos.start(Path("clip.avi"), tmp_path / "clip.webm", 5.0)  # named .webm already: kept as it is
    with pytest.raises(FerError, match=r"clip\.webm: cannot write a WebM video here \(.*; annotate=false: no copies\)"):
        videos.write(Path("clip.avi"), np.zeros((48, 64, 3), np.uint8))


def test_pictures_held_for_their_annotated_copies_are_bounded(tmp_path: Path) -> None:
    """Pictures without a face never fill a batch; held for their annotated copies, a folder of them (or 256 phone
    photos with a face each) would all sit in memory. Past ``max_kept_bytes`` the batch is predicted and written."""
    picture = np.full((100, 100, 3), 120, np.uint8)  # 30,000 bytes, no face in it
    predictor = Predictor(FailsOnThirdBatch(), FaceFinder(make_detector("haar"), "auto", 0.0, None), tmp_path / "out",
                          max_kept_bytes=3 * picture.nbytes)
    written = []
    for i in range(8):
        predictor.add(tmp_path / f"empty_{i}.png", None, picture)
        written.append(len(pd.read_csv(predictor.csv_path)))
    assert written == [0, 0, 3, 3, 3, 6, 6, 6]
    assert len(list((tmp_path / "out" / "annotated").rglob("empty_*.png"))) == 6
    predictor.flush()
    predictor.flush()  # nothing left to predict: as at the end of a run whose last picture filled a batch
    assert len(pd.read_csv(predictor.csv_path)) == 8


def test_a_batch_that_fills_slowly_is_saved_after_save_every_s(tmp_path: Path) -> None:
    """A video with few faces takes long to fill a batch; its rows are written once the batch's first frame has
    waited ``save_every_s``, so that a kill loses seconds, not the video's first minutes."""
    seconds = iter([0, 4, 10, 12, 14, 30])  # the clock as the first picture of a batch comes, and at each check
    predictor = Predictor(FailsOnThirdBatch(), FaceFinder(make_detector("haar"), "auto", 0.0, None), tmp_path / "out",
                          annotate=False, save_every_s=10, clock=lambda: next(seconds))
    written = []
    for i in range(4):
        predictor.add(tmp_path / f"empty_{i}.png", None, np.full((100, 100, 3), 120, np.uint8))
        written.append(len(pd.read_csv(predictor.csv_path)))
    assert written == [0, 2, 2, 4]  # waited 4 s, then 10 (saved); 2 s since the third came, then 18 (saved)
    with pytest.raises(ConfigError, match=r"save_every_s must be a number above 0 \(seconds a picture may wait"):
        check_settings(compose_config("predict", ["inputs=x", "ckpt=x", "save_every_s=0"]))


def test_a_model_must_be_named_once_and_load(tmp_path: Path) -> None:
    with pytest.raises(FerError, match="name exactly one model"):
        run_predict(tmp_path, f"inputs={tmp_path}")
    with pytest.raises(FerError, match=r"nope\.ckpt: no such checkpoint file"):
        run_predict(tmp_path, f"ckpt={tmp_path / 'nope.ckpt'}", f"inputs={tmp_path}")
    (tmp_path / "model.onnx").write_bytes(b"garbage")
    with pytest.raises(FerError, match=r"model\.onnx: not a loadable ONNX model"):
        run_predict(tmp_path, f"onnx={tmp_path / 'model.onnx'}", f"inputs={tmp_path}")


def test_a_run_dir_names_the_checkpoint_its_test_used(trained_runs: list[Path], tmp_path: Path) -> None:
    """ckpt=<run dir> is the checkpoint the run's TTA and temperature were chosen for, else its last.ckpt."""
    def named(ckpt: Path) -> Path:
        return named_model(compose_config("predict", [f"ckpt={ckpt}", "inputs=unused"]))[1]

    assert named(trained_runs[0]) == best_checkpoint(trained_runs[0]) != trained_runs[0] / "checkpoints" / "last.ckpt"
    description = load_model(compose_config("predict", [f"ckpt={trained_runs[0]}", "inputs=unused",
                                                         "precision=32-true"]))[1]
    assert f"checkpoint {best_checkpoint(trained_runs[0])} " in description
    stopped = tmp_path / "stopped"  # a run killed before its test: no summary.json
    shutil.copytree(trained_runs[0] / "checkpoints", stopped / "checkpoints")
    assert named(stopped) == stopped / "checkpoints" / "last.ckpt"
    with pytest.raises(FerError, match=f"{re.escape(str(tmp_path))}: a folder without checkpoints/last.ckpt"):
        named(tmp_path)


def test_tta_auto_is_the_pick_of_the_checkpoints_run(trained_runs: list[Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "best.ckpt"
    shutil.copy(best_checkpoint(trained_runs[0]), ckpt)
    RunDir(run).write_summary(RunSummary(val_acc_best=0.5, epochs=1, fit_seconds=1.0, precision="32-true",
                                         device="cpu", tta="hflip_shifts"))

    def tta(*overrides: str) -> str:
        cfg = compose_config("predict", [f"ckpt={ckpt}", "inputs=unused", "precision=32-true", *overrides])
        return load_model(cfg)[0].tta

    assert tta() == "hflip_shifts" and tta("tta=hflip") == "hflip"
    (run / "summary.json").unlink()  # not a finished run: no views to copy
    assert tta() == "none"


def test_video_frames_are_sampled(trained_runs: list[Path], tmp_path: Path) -> None:
    faces = private_faces(trained_runs)[:9]
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 48), isColor=False)
    for face in faces:
        writer.write(face)
    writer.release()
    summary, table = run_predict(tmp_path, f"ckpt={best_checkpoint(trained_runs[0])}", f"inputs={video}",
                                 "every_n_frames=4")
    assert table.frame.tolist() == [0, 4, 8] and summary["faces"] == 3


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    height, width = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height), isColor=False)
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def test_video_faces_keep_their_ids_and_each_video_is_summarised(trained_runs: list[Path], tmp_path: Path,
                                                                 capfd: pytest.CaptureFixture[str], caplog,
                                                                 monkeypatch) -> None:
    # One face walks right 10 px a frame, another stays put; 20 frames at 10 fps, every 2nd predicted.
    frames = [scene_with_faces([(10 + 10 * i, 40, 0.5), (420, 250, 0.6)]) for i in range(20)]
    video = write_video(tmp_path / "walk.avi", frames)
    zoomed, look = [], YuNetDetector.with_small_faces
    monkeypatch.setattr(YuNetDetector, "with_small_faces", lambda self, *args: zoomed.append(1) or look(self, *args))
    with caplog.at_level(logging.INFO, logger="fer_lightning.predict.predictor"):
        summary, table = run_predict(tmp_path, f"ckpt={best_checkpoint(trained_runs[0])}", f"inputs={video}",
                                     "every_n_frames=2", "video.zoom_every=5")
    assert len(zoomed) == 2  # YuNet's zoomed look on sampled frames 0 and 5 (video.zoom_every): no small face here
    assert caplog.records[-1].getMessage().endswith(f", annotated copies under {tmp_path / 'out' / 'annotated'}")
    assert table.frame.unique().tolist() == list(range(0, 20, 2))
    np.testing.assert_allclose(table.time_s.unique(), np.arange(0, 2, 0.2), atol=1e-6)
    assert sorted(table.face_id.unique()) == [0, 1] and (table.groupby("frame").size() == 2).all()
    walker = table[table.face_id == table.loc[table.x.idxmin(), "face_id"]]
    assert len(walker) == 10 and walker.x.is_monotonic_increasing and walker.x.iloc[-1] - walker.x.iloc[0] > 150
    [clip] = summary["videos"]
    assert (clip["frames"], clip["frames_with_faces"], clip["faces"]) == (10, 10, 2)
    assert sum(clip["emotion_share"].values()) == pytest.approx(1, abs=1e-3)
    assert clip["dominant_emotion"] == table.emotion.mode()[0]
    for face in clip["per_face"]:
        assert face["frames"] == 10 and (face["first_s"], face["last_s"]) == (0.0, 1.8)
        assert sum(face["emotion_share"].values()) == pytest.approx(1, abs=1e-3)
        assert cv2.imread(str(tmp_path / "out" / face["timeline"])).shape[:2] == (396, 880)
    assert json.loads((tmp_path / "out" / "predictions.json").read_text())["videos"] == summary["videos"]
    assert not (tmp_path / "out" / "faces.png").exists()  # the overview is of photos: one person would fill a row
    # The annotated copy: the 10 sampled frames at 5 per second (as long as the clip), each face's box drawn.
    copy = cv2.VideoCapture(str(tmp_path / "out" / clip["annotated"]))
    assert clip["annotated"].endswith("walk.avi.webm") and copy.get(cv2.CAP_PROP_FPS) == 5
    copied = [copy.read()[1] for _ in range(int(copy.get(cv2.CAP_PROP_FRAME_COUNT)))]
    assert len(copied) == 10 and copied[0].shape == (*frames[0].shape, 3)
    for frame, picture in zip(table.frame.unique(), copied, strict=True):
        for row in table[table.frame == frame].itertuples():  # the box's left edge, green on a gray scene
            edge = picture[row.y + 5:row.y + row.h - 5, max(row.x - 1, 0):row.x + 2].reshape(-1, 3).mean(0)
            assert edge[1] > edge[2] + 60 and edge[1] > edge[0] + 60, (frame, row.face_id, edge)
    printed = capfd.readouterr()
    assert "OpenCV" not in printed.err  # the line OpenCV's C code prints on opening a WebM file, muted
    assert terminal_rows(printed.out, 4) == [  # one row per face in the terminal's table
        ["walk.avi", str(face["face_id"]), "10", face["dominant_emotion"]] for face in clip["per_face"]]


def test_broken_and_empty_videos_are_named_and_the_rest_still_predicted(trained_runs: list[Path],
                                                                          tmp_path: Path) -> None:
    good = write_video(tmp_path / "good.avi", [scene_with_faces([(40, 40, 0.5)])] * 3)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 64 + b"not a video")
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    summary, table = run_predict(tmp_path, f"ckpt={best_checkpoint(trained_runs[0])}",
                                 f"inputs=[{good},{broken},{empty}]", "every_n_frames=1")
    assert summary["errors"] == [f"{broken}: OpenCV cannot open it as a video",
                                 f"{empty}: OpenCV cannot open it as a video"]
    assert set(table.file) == {str(good)} and summary["videos"][0]["faces"] == 1


def test_stack_and_onnx_predict_like_their_sources(trained_runs: list[Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    faces = private_faces(trained_runs)[:10]
    write_faces(tmp_path / "faces", faces)
    stack(stack_cfg(trained_runs, tmp_path / "s", "meta=soft_vote"))
    _, stacked = run_predict(tmp_path, f"stack={tmp_path / 's'}", f"inputs={tmp_path / 'faces'}",
                             "temperature=1")  # the vote's own probabilities; its fitted temperature: test_calibration
    tta = [json.loads((run / "summary.json").read_text())["tta"] for run in trained_runs]  # as their logits had
    singles = [FaceClassifier.from_checkpoint(best_checkpoint(run), tta=t).predict_proba(faces)
               for run, t in zip(trained_runs, tta, strict=True)]
    np.testing.assert_allclose(stacked[PROBA].to_numpy(), np.mean(singles, axis=0), atol=1e-4)

    ckpt = best_checkpoint(trained_runs[1])
    monkeypatch.setattr(onnx_file, "timings", functools.partial(timings, single_runs=3, rounds=1, batch_runs=1))
    figures = export(compose_config("export", [f"ckpt={ckpt}", f"out={tmp_path / 'm.onnx'}",
                                               f"csv_path={trained_runs[0].parent / 'fer_synthetic.csv'}",
                                               f"cache_dir={tmp_path / 'cache'}"]))
    assert figures["max_abs_logit_diff"] <= 1e-4 and figures["argmax_agreement"] == 1.0
    timed = {key.removesuffix("_latency_ms_p50") for key in figures if key.endswith("_latency_ms_p50")}
    assert {"torch_fp32", "onnxruntime", "openvino"} <= timed
    assert f"cpu={cpu_name()}\n" in capsys.readouterr().out  # which CPU those latencies were measured on
    onnx_model, plain = OnnxFaceClassifier(tmp_path / "m.onnx"), FaceClassifier.from_checkpoint(ckpt)  # no TTA
    for n in (1, 7):  # the batch axis is dynamic
        np.testing.assert_allclose(onnx_model.logits(faces[:n]), plain.logits(faces[:n]), atol=1e-4)
    _, via_onnx = run_predict(tmp_path, f"onnx={tmp_path / 'm.onnx'}", f"inputs={tmp_path / 'faces'}")
    np.testing.assert_allclose(via_onnx[PROBA].to_numpy(), plain.predict_proba(faces), atol=1e-4)
    with pytest.raises(FerError, match="runtime for an ONNX file must be auto or one of onnxruntime, openvino, got "):
        OnnxFaceClassifier(tmp_path / "m.onnx", "torch")


class MouthReader:
    """A stand-in model that reads one class from one part of the face: Happy's probability is the mean brightness
    of rows 32-39, columns 16-31 (where a mouth would be); the other six share the rest."""

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        happy = images[:, 32:40, 16:32].mean((1, 2)) / 255
        proba = np.repeat(((1 - happy) / 6)[:, None], len(CLASS_NAMES), axis=1)
        proba[:, CLASS_NAMES.index("Happy")] = happy
        return proba


def test_occlusion_maps_point_at_the_part_of_the_face_the_answer_comes_from() -> None:
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 100, (3, 48, 48), dtype=np.uint8)
    faces[:, 32:40, 16:32] = 250  # a bright mouth: hiding any of it lowers Happy
    maps = occlusion_maps(MouthReader().predict_proba, faces, np.full(3, CLASS_NAMES.index("Happy")), batch_size=50)
    assert maps.shape == (3, 48, 48) and maps.dtype == np.float32
    for drops in maps:
        inside = np.zeros((48, 48), bool)
        inside[32:40, 16:32] = True
        peak = np.unravel_index(drops.argmax(), drops.shape)
        assert inside[peak] and drops[inside].min() > 0
        assert np.abs(drops[:24]).max() == 0  # hiding the top half, which the model never reads, changes nothing
    picture = explanation_picture(faces[0], maps[0], "Happy 90%")
    assert picture.shape == (28 + 48 * 4, 2 * 48 * 4, 3)


def test_explain_writes_a_map_for_each_photo_face(trained_runs: list[Path], tmp_path: Path) -> None:
    photos = write_faces(tmp_path / "faces", private_faces(trained_runs)[:3])
    summary, _ = run_predict(tmp_path, f"ckpt={best_checkpoint(trained_runs[0])}", f"inputs={tmp_path / 'faces'}",
                             "explain=true", "batch_size=64")
    written = sorted((tmp_path / "out" / "explained").rglob("face0.png"))
    assert [path.parent.name for path in written] == [photo.name for photo in photos] and summary["faces"] == 3
    assert cv2.imread(str(written[0])).shape == (28 + 48 * 4, 2 * 48 * 4, 3)


def test_sheets_keep_what_is_known_of_each_face_and_score_the_unseen_apart(tmp_path: Path) -> None:
    faces = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    labels = np.arange(6) % len(CLASS_NAMES)
    about = pd.DataFrame({"line": np.arange(6) + 100, "unseen": [True, False, True, False, True, True]})
    truth = make_sheets(faces, labels, tmp_path, pictures=2, per_picture=3, about=about)
    pasted = (truth.line - 100).to_numpy()
    assert sorted(pasted) == list(range(6)) and (truth.unseen == about.unseen[pasted].to_numpy()).all()
    assert (truth.label == [CLASS_NAMES[labels[i]] for i in pasted]).all()
    named = np.where(truth.unseen, truth.label, "Happy")  # the unseen right, the others (Happy or not) mostly wrong
    found = truth.assign(status="ok", emotion=named).drop(index=truth.index[truth.line == 104])  # one unseen missed
    figures = score(found, truth)
    seen_right = int(((~truth.unseen) & (truth.label == "Happy")).sum())
    assert figures["detected"] == 5 and figures["detected_unseen"] == 3
    assert figures["accuracy_on_detected_unseen"] == 1.0 and figures["accuracy_on_detected"] == (3 + seen_right) / 5


@pytest.mark.skipif(not REAL_CSV, reason="set FER2013_CSV to run on the real FER-2013")
def test_faces_pasted_into_photos_are_found_boxed_and_labelled(trained_runs: list[Path], tmp_path: Path,
                                                               real_public_test: tuple) -> None:
    faces, labels = real_public_test
    truth = make_sheets(faces[:60], labels[:60], tmp_path / "photos", pictures=10, per_picture=3)
    ckpt = best_checkpoint(trained_runs[0])
    _, table = run_predict(tmp_path, f"ckpt={ckpt}", f"inputs={tmp_path / 'photos'}", "batch_size=8", "tta=none")
    scores = score(table, truth)
    assert scores["detection_rate"] >= 0.5 and scores["false_detections"] <= 3, scores
    found = table[table.status == "ok"]
    sides = found.merge(truth, on=["file"], suffixes=("", "_true")).query(
        "x_true <= x + w / 2 <= x_true + w_true and y_true <= y + h / 2 <= y_true + h_true")
    assert ((sides.w / sides.w_true).between(0.5, 1.5)).all()  # boxes the pasted face, not a corner of it
    # The label path: each row's probabilities are the model's on that row's own crop.
    cfg = compose_config("predict", ["inputs=x"])
    finder = FaceFinder(make_detector(**cfg.detector), "always", cfg.margin, cfg.level_eyes_above)
    temperature = json.loads((trained_runs[0] / "summary.json").read_text())["temperature"]  # temperature=auto
    first, classifier = found.iloc[0], FaceClassifier.from_checkpoint(ckpt, temperature=temperature)
    gray = cv2.imread(str(Path(first.file)), cv2.IMREAD_GRAYSCALE)
    [face] = [f for f in finder.faces(gray)
              if finder.crop_box(f, gray.shape) == Box(*(int(first[k]) for k in "xywh"))]
    np.testing.assert_allclose(classifier.predict_proba(finder.crop(gray, face)[None])[0],
                               first[PROBA].to_numpy(float), atol=1e-3)


def test_the_python_reader_answers_as_fer_predict_does(trained_runs: list[Path], tmp_path: Path) -> None:
    faces = private_faces(trained_runs)[:5]
    photos = write_faces(tmp_path / "faces", faces)
    scene = scene_with_faces([(40, 60, 0.5), (330, 150, 0.8)])
    cv2.imwrite(str(tmp_path / "faces" / "scene.png"), scene)
    ckpt = best_checkpoint(trained_runs[0])
    _, table = run_predict(tmp_path, f"ckpt={ckpt}", f"inputs={tmp_path / 'faces'}", "batch_size=4")
    reader = EmotionReader.load(ckpt, overrides=["precision=32-true"])
    answers = reader.read_many([*photos[:2], *faces[2:], scene])  # files and arrays alike, in the table's order
    assert [len(found) for found in answers] == [1] * 5 + [2]
    read = [face for found in answers for face in found]
    assert [[face.box.x, face.box.y, face.box.w, face.box.h] for face in read] == \
        table[["x", "y", "w", "h"]].to_numpy().tolist()
    assert [face.emotion for face in read] == table.emotion.tolist()
    np.testing.assert_allclose([list(face.probabilities.values()) for face in read], table[PROBA], atol=1e-4)
    np.testing.assert_allclose([face.confidence for face in read], table.confidence, atol=1e-4)
    assert [face.detector_score for face in read[:5]] == [None] * 5 and all(face.detector_score for face in read[5:])
    np.testing.assert_array_equal(read[2].crop, faces[2])
    assert reader.read(np.full((120, 160), 120, np.uint8)) == []  # a picture without a face
    with Image.open(tmp_path / "faces" / "scene.png") as opened:  # a Pillow image, as a notebook holds one
        assert [face.probabilities for face in reader.read(opened)] == [face.probabilities for face in read[5:]]
        assert opened.mode == "L" and opened.size == (640, 480)
    assert f"checkpoint {ckpt}" in reader.description
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):  # inside a user's own Hydra app
        (tmp_path / "mine.yaml").write_text("mine: 1\n")
        inside = EmotionReader.load(ckpt, overrides=["precision=32-true"]).read(faces[0])
        assert compose("mine").mine == 1  # the app's configs are still the ones Hydra finds
    assert inside[0].probabilities == read[0].probabilities


def test_the_python_readers_video_answers_as_fer_predict_does(trained_runs: list[Path], tmp_path: Path) -> None:
    frames = [scene_with_faces([(10 + 10 * i, 40, 0.5), (420, 250, 0.6)]) for i in range(6)]
    video = write_video(tmp_path / "walk.avi", frames)
    ckpt = best_checkpoint(trained_runs[0])
    _, table = run_predict(tmp_path, f"ckpt={ckpt}", f"inputs={video}", "every_n_frames=1", "annotate=false")
    reader = EmotionReader.load(ckpt, overrides=["precision=32-true"]).video()
    capture = cv2.VideoCapture(str(video))  # the frames as fer-predict decodes them, read one at a time
    read = [face for _ in frames for face in reader.read(capture.read()[1])]
    assert [[face.face_id, face.box.x, face.box.y, face.box.w, face.box.h] for face in read] == \
        table[["face_id", "x", "y", "w", "h"]].to_numpy().tolist()
    assert sorted({face.face_id for face in read}) == [0, 1]
    np.testing.assert_allclose([list(face.probabilities.values()) for face in read], table[PROBA], atol=1e-4)
    with pytest.raises(FerError, match=r"^frame 6: expected an 8-bit gray"):
        reader.read(np.zeros((48, 48), np.float32))


def test_the_readmes_python_example_runs_as_written(trained_runs: list[Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [example] = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), scene_with_faces([(40, 60, 0.5)]))
    placeholders = {"outputs/train/runs/<date_time>": str(trained_runs[0]),
                    "photo.jpg": str(photo)}
    for placeholder, path in placeholders.items():
        assert example.count(placeholder) == 1
        example = example.replace(placeholder, path)
    exec(example, {})
    [printed] = capsys.readouterr().out.splitlines()
    assert re.fullmatch(rf"Box\(x=\d+, y=\d+, w=\d+, h=\d+\) ({'|'.join(CLASS_NAMES)}) \d+%", printed), printed


def test_the_python_reader_names_a_bad_setting_or_picture(trained_runs: list[Path], tmp_path: Path) -> None:
    ckpt = best_checkpoint(trained_runs[0])
    with pytest.raises(FerError, match="name exactly one model"):
        EmotionReader.load()
    with pytest.raises(ConfigError, match="margin"):
        EmotionReader.load(ckpt, overrides=["margin=-0.5"])
    reader = EmotionReader.load(ckpt, overrides=["precision=32-true", "runtime=torch"])
    with pytest.raises(FerError, match=r"^picture 1: expected an 8-bit .* got a float32 array of shape \(48, 48\)$"):
        reader.read_many([np.zeros((48, 48), np.uint8), np.zeros((48, 48), np.float32)])
    with pytest.raises(FerError, match=r"^picture 0: expected a file's path, a Pillow image or an image array, got "
                                       r"list$"):
        reader.read([[0] * 48] * 48)  # type: ignore[arg-type]
    with pytest.raises(MediaError, match=r"nope\.png: unreadable"):
        reader.read(tmp_path / "nope.png")


def test_int8_export_is_checked_on_public_test_and_a_kept_copy_runs_for_its_checkpoint(
        trained_runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = trained_runs[0].parent / "fer_synthetic.csv"
    ckpt = shutil.copy(best_checkpoint(trained_runs[0]), tmp_path / "m.ckpt")  # fer-export writes m.onnx beside it
    settings = [f"ckpt={ckpt}", "bench=false", "int8=true", f"csv_path={csv}", f"cache_dir={tmp_path / 'cache'}"]
    figures = export(compose_config("export", [*settings, "int8_max_drop=100"]))
    int8 = tmp_path / "m.int8.onnx"
    nodes = onnx.load(int8).graph.node
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in nodes}
    dequantized = {name for node in nodes if node.op_type == "DequantizeLinear" for name in node.output}
    assert "BatchNormalization" not in {node.op_type for node in nodes}  # folded into the convs (inference.folding)
    assert all(set(node.input) & dequantized for node in nodes if node.op_type in ("Conv", "Gemm"))  # all int8
    faces, labels = load_fer2013(csv).split("PublicTest")[:2]
    fp32_logits = OnnxFaceClassifier(tmp_path / "m.onnx").logits(faces)
    assert OnnxFaceClassifier(int8).int8 and not OnnxFaceClassifier(tmp_path / "m.onnx").int8
    for runtime in ("onnxruntime", "openvino"):
        int8_logits = OnnxFaceClassifier(int8, runtime).logits(faces)
        assert figures[f"{runtime}_int8_acc"] == pytest.approx(np.mean(int8_logits.argmax(1) == labels))
        assert figures[f"{runtime}_int8_drop_points"] == pytest.approx(
            100 * (figures[f"{runtime}_fp32_acc"] - figures[f"{runtime}_int8_acc"]))
        assert np.abs(int8_logits - fp32_logits).max() < 0.1 * np.abs(fp32_logits).max()  # int8, not noise

    # fer-predict runs the checked copy for its checkpoint (int8=auto), the float graph with int8=false, and
    # not a copy older than the checkpoint (the checkpoint rewritten since: other weights).
    def predict_model(*overrides: str) -> tuple[np.ndarray, str]:
        model, description = load_model(compose_config("predict", [f"ckpt={ckpt}", "inputs=x", "tta=none",
                                                                   "precision=32-true", *overrides]))
        return model.predict_proba(faces), description

    int8_proba = OnnxFaceClassifier(int8, "openvino").predict_proba(faces)
    proba, description = predict_model()  # runtime=auto: OpenVINO for an int8 graph, onnxruntime for float32
    assert f"on openvino (its int8 copy {int8})" in description
    np.testing.assert_allclose(proba, int8_proba, atol=1e-5)
    for overrides, runtime in ((["int8=false"], "onnxruntime"), (["runtime=torch"], "torch")):
        proba, description = predict_model(*overrides)
        assert f" on {runtime}," in description and np.abs(proba - int8_proba).max() > 1e-4
    assert [OnnxFaceClassifier(file, "auto").runtime for file in (int8, tmp_path / "m.onnx")] == ["openvino",
                                                                                                  "onnxruntime"]
    os.utime(ckpt, (int8.stat().st_mtime + 10,) * 2)
    assert "int8 copy" not in predict_model()[1]
    with pytest.raises(FerError, match=r"int8 must be auto .* or false, got True"):
        predict_model("int8=true")
    with pytest.raises(ValueError, match="runtime for an int8 graph must be one of onnxruntime, openvino, got 'torch'"):
        FaceClassifier.from_checkpoint(ckpt, runtime="torch", int8_graph=int8)
    with pytest.raises(FerError, match=r"m\.int8\.onnx: int8 loses -?[0-9.]+ points of PublicTest accuracy under "
                                       r"onnxruntime .* more than int8_max_drop=-100"):
        export(compose_config("export", [*settings, "int8_max_drop=-100"]))
    assert not int8.exists()  # a refused file is not left behind

    def stopped_check(*args: object) -> None:  # the copy fer-predict would run is not there while it is checked
        assert not int8.exists() and (tmp_path / ".unchecked-m.int8.onnx").is_file()
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_file, "int8_accuracy_check", stopped_check)
    with pytest.raises(KeyboardInterrupt):  # a check stopped midway leaves neither file
        export(compose_config("export", settings))
    assert not int8.exists() and not list(tmp_path.glob("*unchecked*"))


@pytest.mark.parametrize(("override", "error"), [
    ("int8=maybe", "int8 must be true or false, got 'maybe'"),
    ("format=tflite", "format must be onnx, got 'tflite'"),
    ("parity_rows=0", "parity_rows must be a whole number of faces, at least 1; got 0"),
    ("int8_calibration_rows=0", "int8_calibration_rows must be a whole number of faces, at least 1; got 0"),
    ("opset=abc", "opset must be a whole number, at least 7; got 'abc'"),
    ("tolerance=-1", r"tolerance must be a number above 0 \(the largest logit difference accepted\), got -1"),
    ("int8_max_drop=some", r"int8_max_drop must be a number \(points of PublicTest accuracy\), got 'some'"),
    ("bench=maybe", "bench must be true or false, got 'maybe'"),
])
def test_export_settings_are_checked_before_the_checkpoint_loads(tmp_path: Path, override: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        export(compose_config("export", [f"ckpt={tmp_path / 'never_read.ckpt'}", override]))


def test_export_parity_fails_on_nan_and_on_drift() -> None:
    expected = np.zeros((4, 7), np.float32)
    assert parity(expected, expected + 1e-6, 1e-4, "m.onnx")["max_abs_logit_diff"] <= 1e-4
    nan = expected.copy()
    nan[2, 3] = np.nan
    with pytest.raises(FerError, match=r"m\.onnx: non-finite logits on 4 PublicTest faces"):
        parity(expected, nan, 1e-4, "m.onnx")
    with pytest.raises(FerError, match=r"differ from PyTorch.s by up to 1\.00e-02"):
        parity(expected, expected + 0.01, 1e-4, "m.onnx")
