"""The classifier's runtimes (indexer.model.runtimes) on real photos: channels_last, the compiled
package and the int8 one give the labels eager fp32 gives; `auto` takes the fastest package built
for this machine, and a missing, foreign or damaged one falls back to channels_last with a log
line, never an error. The packages are really compiled here (about a minute, once per run)."""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import UsageError
from indexer.images import decode
from indexer.model.labeller import EfficientNetLite0Labeller
from indexer.model.runtimes import PORTABLE
from indexer.settings import ImageLimits, ModelSettings

DATA = Path(__file__).resolve().parents[1] / "data"
PIXDEX = str(Path(sys.executable).with_name("pixdex"))


def pixels() -> np.ndarray:
    files = sorted(p for sub in ("photos", "scenes", "people") for p in (DATA / sub).iterdir()
                   if p.suffix in (".jpg", ".png"))
    return np.stack([decode(f.read_bytes(), ImageLimits(), 224, 0).pixels for f in files])


def labeller(runtime: str, folder: Path) -> EfficientNetLite0Labeller:
    lab = EfficientNetLite0Labeller(ModelSettings(device="cpu", faces=False, runtime=runtime, compiled=folder))
    lab.load()
    return lab


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> Path:
    """The packages, built by the commands a person runs: the fp32 one for this CPU (make compiled),
    and fp32 and int8 for any x86-64-v3 CPU (--portable, as the Dockerfiles build them)."""
    folder = tmp_path_factory.mktemp("compiled")
    env = {"PIXDEX_MODEL_COMPILED": str(folder), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    calibration = ["--int8", str(DATA / "photos"), str(DATA / "scenes"), str(DATA / "people")]
    for extra in ([], ["--portable"], ["--portable", *calibration]):
        done = subprocess.run([PIXDEX, "compile-model", "--device", "cpu", *extra], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "compiled in" in done.stderr
    return folder


def test_every_runtime_labels_real_photos_as_eager_fp32_does(packages):
    images = pixels()
    eager = labeller("eager", packages)
    reference = eager.predict(images)
    for runtime in ("channels_last", "compiled", "int8"):
        lab = labeller(runtime, packages)
        assert lab.runtime == runtime
        got = lab.predict(images)
        for a, b in zip(got, reference, strict=True):
            assert a.classes[0][0] == b.classes[0][0], runtime  # the same best class
            concepts, theirs = dict(a.concepts), dict(b.concepts)
            worst = max(abs(concepts.get(n, 0) - theirs.get(n, 0)) for n in concepts.keys() | theirs.keys())
            assert worst < (0.05 if runtime == "int8" else 1e-3), (runtime, worst)
            assert float(np.dot(a.embedding, b.embedding)) > 0.98  # similar images stay similar


def test_auto_takes_int8_then_compiled_then_channels_last(packages, tmp_path):
    assert labeller("auto", packages).runtime == "int8"
    only_fp32 = tmp_path / "fp32"
    only_fp32.mkdir()
    for package in packages.glob("*.pt2"):
        if "-int8" not in package.name:
            (only_fp32 / package.name).write_bytes(package.read_bytes())
    assert labeller("auto", only_fp32).runtime == "compiled"
    assert labeller("auto", tmp_path / "none").runtime == "channels_last"


def test_a_missing_or_damaged_package_falls_back_with_a_log_line(packages, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pixdex.model")
    assert labeller("compiled", tmp_path / "none").runtime == "channels_last"
    assert "no compiled model for this machine" in caplog.text and "pixdex compile-model" in caplog.text
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for package in packages.glob("*.pt2"):
        (damaged / package.name).write_bytes(b"not a package")
    lab = labeller("auto", damaged)
    assert lab.runtime == "channels_last" and "cannot be loaded" in caplog.text
    assert lab.predict(pixels()[:2])[0].classes  # and it labels


def test_an_unknown_runtime_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="is no runtime: one of auto, eager, channels_last, compiled, int8"):
        labeller("turbo", tmp_path)


def test_a_batch_larger_than_a_package_takes_is_run_in_parts(packages):
    from indexer.model.runtimes import MAX_BATCH

    images = np.resize(pixels(), (MAX_BATCH + 3, 224, 224, 3))  # a --batch-size over what was exported
    probs, embeddings = labeller("compiled", packages).probabilities(images)
    assert probs.shape == (MAX_BATCH + 3, 1000) and embeddings.shape == (MAX_BATCH + 3, 1280)


def test_portable_packages_use_no_instruction_past_avx2_and_are_taken_where_no_native_one_is(packages, tmp_path,
                                                                                             caplog):
    portable = sorted(packages.glob(f"*-{PORTABLE}.pt2"))
    assert len(portable) == 2  # fp32 and int8
    for path in portable:
        with zipfile.ZipFile(path) as package:
            [library] = [n for n in package.namelist() if n.endswith(".so")]
            with tempfile.NamedTemporaryFile(suffix=".so") as so:
                so.write(package.read(library))
                so.flush()
                code = subprocess.run(["objdump", "-d", so.name], capture_output=True, text=True, check=True).stdout
        assert "ymm" in code and "zmm" not in code, path.name  # AVX2 vectors, no AVX-512 register anywhere
    caplog.set_level(logging.INFO, logger="pixdex.model")
    assert labeller("int8", packages).runtime == "int8"  # no native int8 package here: the portable one
    assert portable[1].name in caplog.text or portable[0].name in caplog.text
    only_portable = tmp_path / "portable"
    only_portable.mkdir()
    for path in portable:
        (only_portable / path.name).write_bytes(path.read_bytes())
    lab = labeller("compiled", only_portable)  # as a container image ships them
    assert lab.runtime == "compiled"
    images = pixels()
    for a, b in zip(lab.predict(images), labeller("eager", packages).predict(images), strict=True):
        assert a.classes[0][0] == b.classes[0][0]
