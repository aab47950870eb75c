"""The classifier itself: `pixdex compile-model` builds its compiled runtime for this machine."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from indexer.cli.common import OK, device_option, say
from indexer.cli.plugins import Command
from indexer.errors import UsageError
from indexer.images import ImageError, decode
from indexer.model.labeller import EfficientNetLite0Labeller, make_labeller
from indexer.model.runtimes import PORTABLE
from indexer.settings import ImageLimits, Settings
from indexer.sources.files import find_images

MIN_CALIBRATION = 8  # photos an int8 calibration takes at least


def _arguments(p: argparse.ArgumentParser) -> None:
    device_option(p)
    p.add_argument("--int8", nargs="+", metavar="PHOTOS",
                   help="build the int8 model (CPU) instead, calibrated on these photos or folders of photos "
                        f"(at least {MIN_CALIBRATION}, real photos like the ones you index; needs torchao)")
    p.add_argument("--portable", action="store_true",
                   help="build for any x86-64-v3 CPU (AVX2: every x86 server since 2013, AWS Lambda's) instead "
                        "of this one's exact instruction sets: what a container image ships, since it runs on "
                        "other machines than the one that built it. Used where no package for the exact CPU is")


def calibration_photos(paths: list[str], size: int) -> np.ndarray:
    """The photos under `paths` as the pipeline feeds the model; ones that cannot be decoded are skipped."""
    pixels = []
    for path in find_images([Path(p) for p in paths]):
        try:
            pixels.append(decode(path.read_bytes(), ImageLimits(), size, 0).pixels)
        except (ImageError, OSError) as exc:
            say(f"skipped {path}: {exc}")
    if len(pixels) < MIN_CALIBRATION:
        raise UsageError(f"--int8 found {len(pixels)} photos in {' '.join(paths)}; calibrating takes at least "
                         f"{MIN_CALIBRATION}")
    return np.stack(pixels)


def compile_model(args: argparse.Namespace, settings: Settings) -> int:
    model = settings.model_settings().model_copy(update={"runtime": "eager", "faces": False})
    labeller = make_labeller(model)
    if not isinstance(labeller, EfficientNetLite0Labeller):
        raise UsageError(f"only the default model compiles ahead of time, not {settings.model!r}")
    calibration = calibration_photos(args.int8, labeller.input_size) if args.int8 else None
    kind = f"int8, calibrated on {len(calibration)} photos" if calibration is not None else "fp32"
    target = f"any {PORTABLE} CPU" if args.portable else labeller.device
    say(f"compiling {labeller.name} ({kind}) for {target} (a minute or two; once per machine and torch)")
    t = time.perf_counter()
    path = labeller.compile(calibration, portable=args.portable)
    say(f"compiled in {time.perf_counter() - t:.0f} s: {path}")
    say("pixdex uses it from now on (PIXDEX_MODEL_RUNTIME=auto, the default, or compiled / int8)")
    return OK


COMMANDS = [
    Command("compile-model", "compile the classifier ahead of time for this machine (a faster runtime)",
            _arguments, compile_model, settings=lambda args: {"device": args.device},
            description="Build the AOTInductor package of the default classifier for this machine's CPU (or "
                        "GPU) and torch version, into PIXDEX_MODEL_COMPILED (default: the user cache folder). "
                        "With it, PIXDEX_MODEL_RUNTIME=auto (the default) runs the compiled model; without "
                        "it, channels_last. With --int8 PHOTOS, the int8 model (CPU), which auto prefers. "
                        "Needs a C++ compiler (g++)."),
]
