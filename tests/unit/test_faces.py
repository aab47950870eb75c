"""indexer.model.faces: MTCNN with facenet-pytorch's real weights on real photos (tests/data/people/SOURCES.md
says where each comes from and how many faces a person counts in it), and its NMS against a plain greedy one."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from indexer.errors import ModelError
from indexer.model import faces as faces_module
from indexer.model.faces import INSTALL, Face, FaceDetector, batched_nms, default_weights_dir, nms

PEOPLE = Path(__file__).parents[1] / "data" / "people"

# the face as a person marks it on each portrait (x1, y1, x2, y2), see SOURCES.md
PORTRAITS = {
    "jesper_2.jpg": (265, 95, 510, 415),
    "jesper.jpg": (150, 0, 730, 480),
    "anne_helene.jpg": (140, 135, 215, 230),
}
# faces counted by eye (SOURCES.md); the detector must be within one
GROUPS = {"qt-logo.jpg": 3, "bar55_2.jpg": 2, "bar55.jpg": 7}


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    model = FaceDetector(device="cpu")
    model.load()
    return model


def test_portraits_give_one_face_on_the_face(detector):
    names = list(PORTRAITS)
    for name, faces in zip(names, detector.detect([rgb(PEOPLE / n) for n in names]), strict=True):
        assert len(faces) == 1, (name, faces)
        face = faces[0]
        assert isinstance(face, Face) and face.score > 0.9
        assert iou(face.box, PORTRAITS[name]) > 0.6, (name, face.box)


def test_group_photos_count_within_one(detector):
    names = list(GROUPS)
    for name, faces in zip(names, detector.detect([rgb(PEOPLE / n) for n in names]), strict=True):
        assert abs(len(faces) - GROUPS[name]) <= 1, (name, len(faces), faces)
        scores = [f.score for f in faces]
        assert scores == sorted(scores, reverse=True)  # best first
        height, width = rgb(PEOPLE / name).shape[:2]
        for x1, y1, x2, y2 in (f.box for f in faces):
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def test_no_people_no_faces(detector, photos):
    black = np.zeros((480, 640, 3), np.uint8)
    tiny = rgb(PEOPLE / "jesper_2.jpg")[100:124, 300:324]  # 24x24 of a face: too small to look for
    assert detector.detect([rgb(photos / "cat.png"), rgb(photos / "coffee.jpg"), black, tiny]) == [[], [], [], []]
    assert detector.detect([np.zeros((5, 3, 3), np.uint8)]) == [[]]
    assert detector.detect([]) == []


def test_a_mixed_batch_gives_one_list_per_image_in_order(detector, photos):
    images = [rgb(PEOPLE / "qt-logo.jpg"), np.zeros((24, 24, 3), np.uint8), rgb(photos / "cat.png"),
              rgb(PEOPLE / "anne_helene.jpg"), rgb(PEOPLE / "jesper_2.jpg")[::2, ::2].copy()]
    batch = detector.detect(images)
    assert [len(faces) for faces in batch] == [3, 0, 0, 1, 1]
    for image, faces in zip(images, batch, strict=True):  # the same faces as one image at a time
        alone = detector.detect([image])[0]
        assert len(alone) == len(faces)
        for a, b in zip(alone, faces, strict=True):
            assert a.box == pytest.approx(b.box, abs=0.5) and a.score == pytest.approx(b.score, abs=1e-3)


def test_the_packed_pyramid_finds_what_each_level_alone_finds(detector, monkeypatch):
    # P-Net runs the small levels of a call's images as shared canvases; with every level alone (the
    # plain MTCNN pass) the faces must be the same, where they are and how sure: one image a call,
    # and all ten images (nine shapes) in one call
    images = [rgb(PEOPLE / n) for n in (*GROUPS, *PORTRAITS)]
    assert len({i.shape for i in images}) >= 5
    # crops whose faces touch the right or bottom edge, so that odd-sized levels hold faces at their
    # last row or column (where P-Net's ceil_mode pool sees one conv output alone, and on a canvas
    # also the one over the slot's black edge, unless that is left out)
    for name, (y0, y1, x0, x1) in (("bar55.jpg", (83, 228, 248, 736)), ("bar55_2.jpg", (0, 245, 0, 500)),
                                   ("jesper.jpg", (0, 522, 0, 707)), ("anne_helene.jpg", (0, 240, 0, 222))):
        images.append(np.ascontiguousarray(rgb(PEOPLE / name)[y0:y1, x0:x1]))
    one_by_one = [detector.detect([image])[0] for image in images]
    together = detector.detect(images)
    monkeypatch.setattr(faces_module, "PACK_PIXELS", 0)
    alone = [detector.detect([image])[0] for image in images]
    assert sum(len(f) for f in alone) >= 17
    for packed in (one_by_one, together):
        for a, b in zip(alone, packed, strict=True):
            assert len(a) == len(b)
            for fa, fb in zip(a, b, strict=True):
                assert fa.box == pytest.approx(fb.box, abs=1.0) and fa.score == pytest.approx(fb.score, abs=1e-3)


def test_boxes_are_in_the_pixels_of_the_image_given(detector):
    # a large image is detected on a smaller copy: the box must come back scaled to it
    small = Image.open(PEOPLE / "jesper_2.jpg").convert("RGB")
    big = small.resize((small.width * 2, small.height * 2), Image.Resampling.BICUBIC)
    (face_small,), (face_big,) = detector.detect([np.asarray(small), np.asarray(big)])
    assert iou(face_big.box, tuple(2 * v for v in face_small.box)) > 0.9


def test_model_id_and_bad_input(detector):
    assert re.fullmatch(rf"mtcnn@[0-9a-f]{{12}}-{detector.work_size}px-min{detector.min_face}", detector.model_id)
    assert FaceDetector(weights=default_weights_dir()).model_id == detector.model_id
    with pytest.raises(ValueError, match="uint8"):
        detector.detect([np.zeros((32, 32, 3), np.float32)])


def test_missing_weights_name_the_fix(tmp_path):
    with pytest.raises(ModelError) as err:
        FaceDetector(weights=tmp_path).load()
    assert INSTALL in str(err.value) and str(tmp_path) in str(err.value)
    assert INSTALL == "pip install --no-deps facenet-pytorch==2.6.0"
    (tmp_path / "pnet.pt").write_bytes(b"not a state dict")
    (tmp_path / "rnet.pt").write_bytes(b"")
    (tmp_path / "onet.pt").write_bytes(b"")
    with pytest.raises(ModelError, match=re.escape(INSTALL)):
        FaceDetector(weights=tmp_path).load()


def greedy(boxes: list, scores: list, groups: list, threshold: float, mode: str) -> list[int]:
    """The textbook loop, one box at a time, to check batched_nms against."""
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: (groups[i], -scores[i])):
        ok = True
        for k in (k for k in kept if groups[k] == groups[i]):
            a, b = boxes[i], boxes[k]
            inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
            area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
            ok &= inter / (min(area_a, area_b) if mode == "min" else area_a + area_b - inter) <= threshold
        if ok:
            kept.append(i)
    return kept


@pytest.mark.parametrize(("mode", "threshold"), [("union", 0.5), ("union", 0.7), ("min", 0.7)])
def test_batched_nms_is_the_greedy_one(mode, threshold):
    rng = np.random.default_rng(7)
    n = 700  # more than one block of NMS_BLOCK boxes
    xy = rng.uniform(0, 150, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 50, (n, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    groups = rng.integers(0, 3, n)
    got = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), threshold, mode)
    assert got.tolist() == greedy(boxes.tolist(), scores.tolist(), groups.tolist(), threshold, mode)


def test_nms_min_mode_drops_a_box_inside_a_better_one():
    boxes = torch.tensor([[0.0, 0, 100, 100], [10, 10, 50, 50], [200, 200, 260, 260]])
    scores = torch.tensor([0.9, 0.95, 0.5])
    groups = torch.zeros(3, dtype=torch.long)
    assert batched_nms(boxes, scores, groups, 0.7, "union").tolist() == [1, 0, 2]  # IoU 0.16: both stay
    assert batched_nms(boxes, scores, groups, 0.7, "min").tolist() == [1, 2]  # inside: overlap 1 of the smaller
    assert nms(boxes, scores, 0.7, "min").tolist() == [1, 2]
    assert nms(boxes[:0], scores[:0], 0.5).tolist() == []
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.7, "min").tolist() == [0, 2, 1]  # groups apart
