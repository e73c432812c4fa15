"""Faces in pictures: detectors chosen by config, detection against known boxes, levelled crops, ids across
video frames."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import FACE_SIDE, PHOTO, PORTRAIT, REAL_CSV, compose_config, load_script, scene_with_faces

from fer_lightning.cli.detection_bench import bench
from fer_lightning.errors import ConfigError, FerError
from fer_lightning.faces.detection_set import CASES, make_detection_set, match, score_detector
from fer_lightning.faces.detectors import Box, Face, HaarDetector, YuNetDetector, as_bgr, make_detector
from fer_lightning.faces.finder import FaceFinder, square_crop
from fer_lightning.faces.tracking import FaceTracker
from fer_lightning.faces.video_search import VideoFaceSearch, video_detector
from fer_lightning.faces.yunet import YuNet
from fer_lightning.machine import cpu_name
from fer_lightning.predict.request import check_settings


def test_the_detector_is_chosen_by_config() -> None:
    assert compose_config("predict", ["inputs=x"]).detector.name == "yunet"
    haar = compose_config("predict", ["inputs=x", "detector=haar"]).detector
    assert haar.name == "haar" and haar.min_neighbors == 5
    assert isinstance(make_detector(**haar), HaarDetector)
    yunet = make_detector(**compose_config("predict", ["inputs=x", "detector.score_threshold=0.7"]).detector)
    assert isinstance(yunet, YuNetDetector) and yunet.score_threshold == 0.7
    with pytest.raises(FerError, match="detector must be one of haar, yunet, got 'mtcnn'"):
        make_detector("mtcnn")
    with pytest.raises(FerError, match="score_threshold must be between 0 and 1, got 50"):
        make_detector("yunet", score_threshold=50)
    with pytest.raises(FerError, match=r"scale_factor must be a number above 1 \(each pass"):
        make_detector("haar", scale_factor=1.0)  # OpenCV's own answer was an assertion, mid-prediction
    with pytest.raises(FerError, match="min_size must be a whole number of pixels, at least 1; got 0"):
        make_detector("haar", min_size=0)


@pytest.mark.parametrize("name", ["yunet", "haar"])
def test_faces_are_found_where_they_were_pasted(name: str) -> None:
    places = [(40, 60, 0.5), (380, 200, 0.7)]
    faces = make_detector(name).detect(scene_with_faces(places))
    portrait_h, portrait_w = PORTRAIT.shape
    for x, y, scale in places:  # each portrait's face is found once, inside the pasted portrait
        inside = [f for f in faces if x <= f.box.centre[0] <= x + portrait_w * scale
                  and y <= f.box.centre[1] <= y + portrait_h * scale]
        assert len(inside) == 1, faces
        assert 0.5 < inside[0].box.w / (FACE_SIDE * scale) < 1.5
    assert len(faces) == 2
    assert make_detector(name).detect(np.full((480, 640), 120, np.uint8)) == []


def test_yunet_finds_small_faces_through_its_second_pass_and_gives_the_eyes() -> None:
    scene = scene_with_faces([(100, 100, 0.22)])  # a face about 40 px wide
    one_pass = make_detector("yunet", small_face_zoom=1.0).detect(scene)
    [face] = make_detector("yunet").detect(scene)
    assert len(one_pass) <= 1 and 25 < face.box.w < 60
    (lx, ly), (rx, ry) = face.eyes
    assert lx < rx and abs(ly - ry) < 6 and face.box.x < lx < rx < face.box.x + face.box.w


@pytest.mark.skipif(importlib.util.find_spec("yuface") is None,
                    reason="yuface, libfacedetection's own build, has wheels for CPython 3.10 and 3.11 on x86-64 only")
@pytest.mark.filterwarnings("ignore:Image size")  # yuface's, above 960 px: the zoomed picture is so on purpose
def test_the_shipped_yunet_graph_finds_the_faces_libfacedetection_finds() -> None:
    """faces/yunet.onnx against the compiled library its weights were read from (docs/scripts/yunet_onnx.py): colour
    and gray pictures, sides that are not multiples of 32 (the graph's padding), small faces and a zoomed picture."""
    import yuface

    script = load_script("yunet_onnx")
    colour = cv2.imread(PHOTO)
    rng = np.random.default_rng(0)
    noisy = np.clip(scene_with_faces([(30, 40, 0.3), (300, 150, 0.6), (500, 20, 0.2)], size=(471, 655))
                    + rng.normal(0, 12, (471, 655)), 0, 255).astype(np.uint8)
    pictures = [colour, np.ascontiguousarray(colour[::2, ::2]),  # yuface reads rows as if contiguous
                as_bgr(noisy), as_bgr(scene_with_faces([(60, 80, 0.8)], size=(333, 517))),
                cv2.resize(as_bgr(noisy), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)]
    ours, compared = YuNet(), 0
    for picture in pictures:
        scores, boxes, _ = yuface.detect(picture, conf=0)
        compared += int(np.sum(scores / 100 >= script.COMPARED_FROM))
        theirs = (scores / 100, boxes.astype(float))
        assert script.same_faces(ours.detect(picture, script.LIBRARY_THRESHOLD)[:2], theirs), picture.shape
    assert compared >= 8, compared


def test_on_a_video_yunets_zoomed_look_runs_where_it_can_add_a_face() -> None:
    settings = compose_config("predict", ["inputs=x"]).detector  # fer-predict's
    yunet = make_detector(**settings)
    large, small, near = (380, 200, 0.7), (100, 100, 0.15), (100, 100, 0.7)  # about 124, 28 and 124 px wide
    assert len(yunet.first_pass(as_bgr(scene_with_faces([large, small])))) == 1  # the small face needs the zoomed look
    scenes = [[large], *[[large, small]] * 5, [small], [], *[[near]] * 6, [small]]
    search = video_detector(yunet, zoom_every=4)
    assert isinstance(search, VideoFaceSearch)
    found, zoomed = [], []
    for places in scenes:
        before = search.zoomed_frames
        faces = search.detect(scene_with_faces(places))
        found.append(len(faces))
        zoomed.append(search.zoomed_frames > before)
    # Frame 0: the first, zoomed; 1-3: the small face comes into view and is missed until frame 4, the next zoomed
    # one; 5-9: followed, for 3 frames after the last one where it was found (6); 8 and 12: the 4th after 4 and 8;
    # 14: a face shrank out of the first look's reach, so the zoomed look runs at once.
    assert zoomed == [True, False, False, False, *[True] * 6, False, False, True, False, True]
    assert found == [1, 1, 1, 1, 2, 2, 1, 0, *[1] * 7]
    frame = scene_with_faces(scenes[4])
    assert VideoFaceSearch(yunet, every=4).detect(frame) == yunet.detect(frame)  # zoomed, as on a photo
    assert video_detector(yunet, zoom_every=1) is yunet
    assert video_detector(make_detector("yunet", small_face_zoom=1.0), zoom_every=4).__class__ is YuNetDetector
    with pytest.raises(ConfigError, match=r"video\.zoom_every must be a whole number of sampled frames, at least 1"):
        check_settings(compose_config("predict", ["inputs=x", "video.zoom_every=0"]))


def test_the_crop_is_levelled_by_the_eyes() -> None:
    detector = make_detector("yunet")
    scene = scene_with_faces([(100, 100, 1.0)], size=(480, 480))
    upright = FaceFinder(detector, "always", margin=0.0, level_above=None)
    [face] = upright.faces(scene)
    reference = upright.crop(scene, face).astype(float)
    turn = cv2.getRotationMatrix2D(face.box.centre, -25, 1.0)  # 25 degrees clockwise
    tilted = cv2.warpAffine(scene, turn, scene.shape[::-1], borderValue=120)
    differences = {}
    for level_above in (None, 10, 40):
        finder = FaceFinder(detector, "always", margin=0.0, level_above=level_above)
        [found] = finder.faces(tilted)
        differences[level_above] = np.abs(finder.crop(tilted, found) - reference).mean()
    assert 15 < FaceFinder.eye_angle(found) < 40  # the right eye is now lower than the left
    assert differences[10] < 0.7 * differences[None], differences
    assert differences[40] == differences[None]  # a tilt below the threshold is left alone


def test_crops_are_48_square_at_the_edges_and_whole_48px_pictures_pass_through() -> None:
    scene = np.arange(100 * 120, dtype=np.uint32).reshape(100, 120).astype(np.uint8)
    assert square_crop(scene, (0, 0), 80, 10).shape == (48, 48)  # mostly outside: edge pixels repeated
    finder = FaceFinder(HaarDetector(), "auto", margin=0.0, level_above=10)
    face48 = np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8)
    [whole] = finder.faces(face48)
    assert finder.crop(face48, whole) is face48 and finder.crop_box(whole, face48.shape) == Box(0, 0, 48, 48)
    box = finder.crop_box(Face(Box(-10, 20, 40, 60)), (100, 120))  # squared, widened to 60, clipped
    assert box == Box(0, 20, 40, 60)


def test_detections_match_true_faces_once() -> None:
    truth = pd.DataFrame([{"x": 100, "y": 100, "side": 80}, {"x": 300, "y": 100, "side": 80}])
    found = [Face(Box(105, 105, 70, 70)), Face(Box(110, 100, 75, 75)),  # the same face twice
             Face(Box(300, 100, 10, 10)),  # far too small for the second face
             Face(Box(500, 300, 60, 60))]
    hits, false = match(found, truth)
    assert hits == [True, False] and false == 3


def test_ids_follow_faces_across_frames() -> None:
    tracker = FaceTracker(min_overlap=0.3, max_missed=1)
    left, right = Box(0, 0, 50, 50), Box(300, 0, 50, 50)
    assert tracker.assign([left, right]) == [0, 1]
    assert tracker.assign([Box(310, 0, 50, 50), Box(10, 0, 50, 50)]) == [1, 0]  # both moved; order swapped
    assert tracker.assign([Box(20, 0, 50, 50)]) == [0]  # the right face is missing once ...
    assert tracker.assign([Box(30, 0, 50, 50), Box(310, 0, 50, 50)]) == [0, 1]  # ... and keeps its id
    assert tracker.assign([Box(40, 0, 50, 50)]) == [0]
    assert tracker.assign([Box(50, 0, 50, 50)]) == [0]
    assert tracker.assign([Box(50, 0, 50, 50), Box(310, 0, 50, 50)]) == [0, 2]  # gone for 2 frames: a new id


@pytest.mark.skipif(not REAL_CSV, reason="set FER2013_CSV to run on the real FER-2013")
def test_yunet_beats_the_cascade_on_pictures_with_known_boxes(real_public_test: tuple[np.ndarray, np.ndarray]) -> None:
    faces, _ = real_public_test
    data = make_detection_set(faces, pictures_per_case=4, per_picture=4, seed=5)
    assert len(data.pictures) == 4 * len(CASES) and len(data.truth) == 4 * 4 * (len(CASES) - 1)
    haar, yunet = score_detector(make_detector("haar"), data), score_detector(make_detector("yunet"), data)
    assert yunet.found.mean() >= 0.85 and yunet.false_detections <= 1, yunet.summary(data.truth)
    assert yunet.found[~haar.found].mean() >= 0.5  # at least half of the cascade's misses are found


def test_the_detection_bench_writes_its_figures(fer_csv: Path, tmp_path: Path) -> None:
    cfg = compose_config("detection_bench", [f"csv_path={fer_csv}", f"cache_dir={tmp_path / 'cache'}",
                                             f"paths.output_dir={tmp_path}", "pictures_per_case=2",
                                             "split=PublicTest", "save_pictures=true",
                                             "settings.yunet.small_face_zoom=1.0"])
    report = bench(cfg)
    cfg.detectors = "mtcnn"  # detectors=mtcnn: one alone, not the letters m, t, c, n, n
    with pytest.raises(FerError, match=r"no settings for detector\(s\) mtcnn; known: haar, yunet_one_pass, yunet"):
        bench(cfg)
    cfg.detectors, cfg.save_pictures = ["haar"], "maybe"
    with pytest.raises(FerError, match="save_pictures must be true or false, got 'maybe'"):
        bench(cfg)
    cfg.save_pictures, cfg.split = True, "Train"
    with pytest.raises(FerError, match="split must be one of Training, PublicTest, PrivateTest, got 'Train'"):
        bench(cfg)
    saved = json.loads((tmp_path / "detection_bench.json").read_text())
    assert saved["detectors"] == report["detectors"]
    assert saved["cpu"] == cpu_name()  # the model, its family and cores, as fer-bench names it
    assert list(saved["detectors"]) == ["haar", "yunet_one_pass", "yunet"]
    assert {"recall", "recall_tilted", "false_per_100_pictures", "ms_per_megapixel", "haar_misses_found"} <= \
        set(saved["detectors"]["yunet"])
    assert cv2.imread(str(tmp_path / "examples.png")).shape[:2] == (3 * 240, len(CASES) * 320)
    assert len(pd.read_csv(tmp_path / "pictures" / "truth.csv")) == 2 * 4 * (len(CASES) - 1)
