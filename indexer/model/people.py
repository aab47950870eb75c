"""Labels from faces (source `faces`): ImageNet has no person class, and people are what personal
photos show most. One face: `person` and `face`; a large one, alone or before a small one:
`portrait`; two or more: `people`; three or more: `group`. A label's confidence is the score of the
face that makes it (the best face for person, the second best for people, the third for group); a
face counts at MIN_SCORE.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.record import Label, Source

FaceBox = tuple[float, float, float, float, float]  # x1, y1, x2, y2 as fractions of the picture, score
# a face this share of the picture's height or more: the photo is of that person (a head-and-shoulders
# shot; a whole standing figure's face is under a tenth). On the validation set (bench_labels.py)
# the single faces judged portraits are 0.17 of the height and up, those judged not 0.14 and under
# (a man at a canyon, a didgeridoo player); tests/data's cameraman, judged no portrait, is 0.15.
# 0.25 found 11 of its 16 portraits, 0.16 finds 14, both with none wrong
PORTRAIT_HEIGHT = 0.16
# beside it, a second face under this share of its height is someone in the background; two faces
# of a size are a couple, `people` and no portrait (two couples had been portraits)
SECOND_FACE = 0.5
MIN_SCORE = 0.9  # faces counted (the detector's last stage keeps 0.7 and up; below 0.9 they are often not faces)
RULES = f"portrait{PORTRAIT_HEIGHT:g}-second{SECOND_FACE:g}-score{MIN_SCORE:g}"  # in the record's model_id


def as_fractions(box: tuple[float, float, float, float], score: float, width: int, height: int) -> FaceBox:
    """A box in pixels of a picture `width` x `height` as fractions of it (what the record keeps)."""
    x1, y1, x2, y2 = box
    clip = lambda v: min(1.0, max(0.0, v))  # noqa: E731
    return clip(x1 / width), clip(y1 / height), clip(x2 / width), clip(y2 / height), float(score)


def counted(faces: Sequence[FaceBox]) -> list[FaceBox]:
    """The faces that count, best first."""
    return sorted((f for f in faces if f[4] >= MIN_SCORE), key=lambda f: -f[4])


def _height(face: FaceBox) -> float:
    return face[3] - face[1]


def face_labels(faces: Sequence[FaceBox]) -> list[Label]:
    """The labels of a picture with these faces."""
    found = counted(faces)
    if not found:
        return []
    best = found[0][4]
    out = [Label("person", best, Source.FACES), Label("face", best, Source.FACES, ("person",))]
    largest, *others = sorted(found, key=_height, reverse=True)
    alone = not others or (len(others) == 1 and _height(others[0]) < SECOND_FACE * _height(largest))
    if _height(largest) >= PORTRAIT_HEIGHT and alone:
        out.append(Label("portrait", largest[4], Source.FACES, ("person", "face")))
    if len(found) >= 2:
        out.append(Label("people", found[1][4], Source.FACES, ("person",)))
    if len(found) >= 3:
        out.append(Label("group", found[2][4], Source.FACES, ("people", "person")))
    return out
