"""indexer.model.labeller with the real EfficientNet-Lite0 weights, and a TorchScript model of our own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from indexer.images import decode
from indexer.model.labeller import ModelError, Prediction, make_labeller
from indexer.record import Label
from indexer.settings import ImageLimits, ModelSettings


def predict(labeller, *paths: Path):
    batch = np.stack([decode(p.read_bytes(), ImageLimits(), labeller.input_size).pixels for p in paths])
    return labeller.predict(batch)


def test_the_four_photos(labeller, photos):
    cat, coffee, rocket, cameraman = predict(
        labeller, *(photos / n for n in ("cat.png", "coffee.jpg", "rocket.jpg", "cameraman.jpg")))
    assert dict(cat.concepts)["cat"] >= 0.8
    assert {c for c, _ in cat.classes[:3]} == {"Egyptian cat", "tiger cat", "tabby cat"}
    assert coffee.classes[0][0] == "espresso"
    assert {"missile", "projectile"} & {c for c, _ in rocket.classes[:3]}
    assert cameraman.classes[0][0] == "tripod"  # a grayscale JPEG


def test_batch_and_single_agree(labeller, photos):
    one = predict(labeller, photos / "coffee.jpg")[0]
    many = predict(labeller, photos / "cat.png", photos / "coffee.jpg")[1]
    assert one.classes[0][0] == many.classes[0][0]
    assert one.classes[0][1] == pytest.approx(many.classes[0][1], abs=1e-4)


def test_embedding_and_model_id(labeller, photos):
    cat, coffee = predict(labeller, photos / "cat.png", photos / "coffee.jpg")
    assert cat.embedding.shape == (1280,) and cat.embedding.dtype == np.float32
    assert np.linalg.norm(cat.embedding) == pytest.approx(1.0, abs=1e-4)
    assert float(cat.embedding @ coffee.embedding) < 0.9
    # the weights, the parts read, the rule files, the scene heads, the face detector and the rules
    # that make labels of its faces
    name, weights, parts, rules, scenes, faces, people = cat.model_id.split("@")
    assert name == "efficientnet-lite0" and weights.endswith("+parts") and parts.endswith("+vocabulary")
    assert rules.endswith("+scenes") and scenes.endswith("+mtcnn") and len(scenes.split("+")[0]) == 12
    assert faces.endswith("-416px-min20+people") and len(faces.split("-")[0]) == 12
    assert people == "portrait0.16-second0.5-score0.9"


def test_labels_carry_parents_and_summed_concepts(labeller, photos):
    (cat,) = predict(labeller, photos / "cat.png")
    labels = {lb.name: lb for lb in cat.labels(labeller.vocabulary)}
    assert "cat" in labels["Egyptian cat"].parents
    cat_classes = [p for c, p in cat.classes if c in labels and "cat" in labels[c].parents]
    assert labels["cat"].confidence >= sum(cat_classes) - 1e-6  # a sum over every cat class, not the top 5 only


def test_empty_batch(labeller):
    assert labeller.predict(np.zeros((0, 224, 224, 3), dtype=np.uint8)) == []


class MeanColour(nn.Module):
    """A 3-class "model": which channel is brightest; features = the mean colour."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = x.mean(dim=(2, 3))
        return mean * 20.0, mean


@pytest.fixture
def colour_model(tmp_path) -> tuple[Path, Path]:
    model = tmp_path / "colours.pt"
    torch.jit.script(MeanColour()).save(str(model))
    labels = tmp_path / "colours.txt"
    labels.write_text("reddish: warm colour\ngreenish: cool colour\nbluish: cool colour\n")
    return model, labels


def test_bring_your_own_torchscript(colour_model):
    model, labels = colour_model
    byo = make_labeller(ModelSettings(name=str(model), labels=labels, input_size=32, device="cpu"))
    img = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    img[0, ..., 0] = 255  # red
    img[1, ..., 2] = 255  # blue
    red, blue = byo.predict(img)
    assert red.classes[0][0] == "reddish" and blue.classes[0][0] == "bluish"
    assert dict(blue.concepts)["cool colour"] == pytest.approx(blue.classes[0][1] + dict(blue.classes)["greenish"])
    assert red.model_id.startswith("colours@")
    assert byo.input_size == 32


def test_model_errors_name_the_setting(colour_model, tmp_path):
    model, labels = colour_model
    with pytest.raises(ModelError, match="unknown model"):
        make_labeller(ModelSettings(name="resnet-9000"))
    with pytest.raises(ModelError, match="no such file"):
        make_labeller(ModelSettings(name=str(tmp_path / "missing.pt")))
    with pytest.raises(ModelError, match="PIXDEX_MODEL_LABELS"):
        make_labeller(ModelSettings(name=str(model))).load()
    two = tmp_path / "two.txt"
    two.write_text("a\nb\n")
    with pytest.raises(ModelError, match="returns 3 classes"):
        make_labeller(ModelSettings(name=str(model), labels=two, input_size=8)).predict(
            np.zeros((1, 8, 8, 3), dtype=np.uint8))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torchscript")
    with pytest.raises(ModelError, match="not a loadable TorchScript file"):
        make_labeller(ModelSettings(name=str(junk), labels=labels)).load()


def test_each_part_of_a_close_up_sees_what_the_whole_does(labeller, photos):
    (coffee,) = predict(labeller, photos / "coffee.jpg")
    assert dict(coffee.part_classes)["espresso"] >= 0.5
    assert dict(coffee.part_concepts)["cup"] >= 0.5


def test_a_part_of_the_picture_needs_a_stricter_threshold_and_never_makes_a_scene(labeller):
    words = labeller.vocabulary
    nothing = Prediction(classes=[("tabby cat", 0.05)], concepts=[], embedding=np.zeros(1, np.float32), model_id="")
    needed = words.threshold("coffee mug", is_class=True) * words.part_factor
    assert words.part_factor > 1

    def stored(**seen) -> dict[str, Label]:
        return {lb.name: lb for lb in replace(nothing, **seen).labels(words)}

    assert "coffee mug" not in stored(part_classes=[("coffee mug", needed * 0.99)])
    mug = stored(part_classes=[("coffee mug", needed)], part_concepts=[("cup", 0.9)])
    assert mug["coffee mug"].confidence == needed and mug["coffee mug"].parents == ("cup",)
    # what the whole picture shows keeps the whole picture's confidence
    assert stored(classes=[("coffee mug", 0.3)], part_classes=[("coffee mug", 0.9)])["coffee mug"].confidence == 0.3
    assert "lake" in words.whole_only
    assert "lake" not in stored(part_concepts=[("lake", 0.99)])  # a patch of water is no lake
    assert "lake" in stored(concepts=[("lake", 0.99)])


def test_a_read_only_image_array_is_labelled_without_a_warning(photos):
    # Pillow's arrays are read-only; torch warns once a process on those (on the user's stderr), so
    # this runs in a fresh process with warnings as errors
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from PIL import Image\n"
        "from indexer.model.labeller import make_labeller\n"
        "from indexer.settings import ModelSettings\n"
        f"a = np.asarray(Image.open({str(photos / 'cat.png')!r}).convert('RGB').resize((224, 224)))[None]\n"
        "assert not a.flags.writeable\n"
        "lab = make_labeller(ModelSettings(device='cpu', faces=False))\n"
        "print(lab.predict(a)[0].classes[0][0])\n"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cat" in done.stdout and "Warning" not in done.stderr
