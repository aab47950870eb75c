"""How the classifier runs: the same network and weights, laid out or compiled for the hardware.

`PIXDEX_MODEL_RUNTIME` picks one (`make bench` measures them side by side, with how far each
strays from eager fp32 on real photos: tests/bench/bench_runtimes.py):

- `eager`: the network as written (NCHW fp32), the reference.
- `channels_last`: the same in NHWC memory layout, which oneDNN's CPU convolutions (and cuDNN's
  tensor cores) run fastest; identical labels to float rounding.
- `compiled`: an AOTInductor package (torch.export + inductor, C++ ahead of time), built once by
  `pixdex compile-model` (make, the Dockerfiles). A package is keyed by the model id, the torch
  version, the device and the CPU's instruction sets: this CPU's, or with `--portable` those of
  any x86-64-v3 CPU (AVX2), which is what a container image ships, since the machine it runs on
  is not the one it was built on. When none matches this machine the labeller says so in one
  log line and runs `channels_last`.
- `int8` (CPU): the same, quantized first with PyTorch's PT2E flow and the X86 inductor quantizer
  (torchao), calibrated on real photos: `pixdex compile-model --int8 PHOTOS...`. Offered because
  it keeps top-1 agreement with eager fp32 on the validation photos (the benchmark prints it).
- `auto` (the default): `int8`, else `compiled`, when a matching package exists; else `channels_last`.
(FX graph-mode int8 cannot trace this network: its "same" padding depends on the input's shape.)
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexer.errors import ModelError, UsageError

if TYPE_CHECKING:
    import torch

log = logging.getLogger("pixdex.model")

RUNTIMES = ("auto", "eager", "channels_last", "compiled", "int8")
MAX_BATCH = 256  # the largest batch a compiled package takes (the GPU benchmark's)


PORTABLE = "x86-64-v3"  # AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE: every x86 server CPU since 2013, AWS Lambda's too
PORTABLE_FLAGS = frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe"})  # /proc/cpuinfo names


@cache  # asked for each package looked up at start-up; a CPU's flags do not change
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as /proc/cpuinfo lists them (none where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_features() -> str:
    """The instruction sets a compiled package may use: what this CPU offers that inductor asks for."""
    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "fma")
    return "-".join(f for f in wanted if f in flags) or platform.machine()


def runs_portable() -> bool:
    """Whether a package built for PORTABLE (`pixdex compile-model --portable`) runs on this CPU."""
    return platform.machine() in ("x86_64", "AMD64") and cpu_flags() >= PORTABLE_FLAGS


def package_key(model_id: str, device: torch.device, portable: bool = False) -> str:
    """What a compiled package must match: the weights and rules, torch, the device, and the CPU's
    instruction sets (this one's, or PORTABLE's for a package built for any such CPU)."""
    import torch

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else PORTABLE if portable else cpu_features()
    raw = f"{model_id}|torch {torch.__version__}|{device.type}|{where}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def package_path(folder: Path, model_id: str, device: torch.device, int8: bool = False,
                 portable: bool = False) -> Path:
    tags = ("-int8" if int8 else "") + (f"-{PORTABLE}" if portable else "")
    return folder / f"efficientnet-lite0-{package_key(model_id, device, portable)}{tags}.pt2"


def package_paths(folder: Path, model_id: str, device: torch.device, int8: bool = False) -> list[Path]:
    """Where a package for this machine may be, best first: one built on a CPU like this one, then
    (an x86 CPU with AVX2) a portable one, as a container image ships it."""
    paths = [package_path(folder, model_id, device, int8)]
    if device.type == "cpu" and runs_portable():
        paths.append(package_path(folder, model_id, device, int8, portable=True))
    return paths


@contextmanager
def _portable_build() -> Iterator[None]:
    """Inductor's C++ for PORTABLE rather than this CPU (-march, its vector ISA), with its caches
    off, so that nothing built for this machine's own instruction sets is reused."""
    from torch._inductor import config  # (inductor reads ATEN_CPU_CAPABILITY at each pick: nothing cached)

    saved = os.environ.get("ATEN_CPU_CAPABILITY"), config.cpp.march, config.force_disable_caches
    os.environ["ATEN_CPU_CAPABILITY"] = "avx2"  # what inductor's vectorised kernels are written for
    config.cpp.march, config.force_disable_caches = PORTABLE, True
    try:
        yield
    finally:
        if saved[0] is None:
            os.environ.pop("ATEN_CPU_CAPABILITY", None)
        else:
            os.environ["ATEN_CPU_CAPABILITY"] = saved[0]
        config.cpp.march, config.force_disable_caches = saved[1], saved[2]


def compile_package(module: torch.nn.Module, device: torch.device, size: int, path: Path,
                    calibration: np.ndarray | None = None, portable: bool = False) -> Path:
    """Export the network for batches of 1..MAX_BATCH and compile it ahead of time into `path`;
    with `calibration` ((N, S, S, 3) uint8 photos), quantized to int8 first (CPU); `portable`: for
    any PORTABLE CPU instead of this one."""
    import torch
    from torch._inductor import aoti_compile_and_package

    example = torch.zeros(2, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    module = module.to(memory_format=torch.channels_last)
    if calibration is not None:
        module = _quantized(module, example, batch, calibration)
    with torch.inference_mode():
        exported = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.pt2")
    with _portable_build() if portable else nullcontext():
        aoti_compile_and_package(exported, package_path=str(partial))
    partial.replace(path)  # whole or not at all: a reader never finds half a package
    return path


def _quantized(module: torch.nn.Module, example: torch.Tensor, batch: object, calibration: np.ndarray):
    """PT2E post-training quantization (x86 inductor quantizer), observers fed real photos."""
    import torch

    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    except ImportError as exc:
        raise ModelError("an int8 model needs torchao: pip install 'pixdex[compile]' (make installs it)") from exc
    graph = torch.export.export(module, (example,), dynamic_shapes=({0: batch},)).module()
    prepared = prepare_pt2e(graph, X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config()))
    with torch.no_grad():
        for start in range(0, len(calibration), 8):
            x = torch.from_numpy(np.ascontiguousarray(calibration[start:start + 8])).permute(0, 3, 1, 2).float()
            prepared(x.to(example.device))
    return convert_pt2e(prepared)


def prepare(module: torch.nn.Module, wanted: str, device: torch.device, folder: Path,
            model_id: Callable[[], str]) -> tuple[Callable, str]:
    """(the callable to run, the runtime it is) for `wanted`; a compiled runtime without its
    package here falls back to channels_last (one log line)."""
    import torch

    if wanted not in RUNTIMES:
        raise UsageError(f"PIXDEX_MODEL_RUNTIME={wanted!r} is no runtime: one of {', '.join(RUNTIMES)}")
    if wanted == "eager":
        return module, "eager"
    tries = {"auto": ["int8", "compiled"], "int8": ["int8"], "compiled": ["compiled"]}.get(wanted, [])
    for runtime in tries:
        if runtime == "int8" and device.type != "cpu":
            continue
        paths = package_paths(folder, model_id(), device, int8=runtime == "int8")
        path = next((p for p in paths if p.is_file()), None)
        if path is None:
            if wanted != "auto":
                log.warning("no %s model for this machine at %s (run `pixdex compile-model%s`); running "
                            "channels_last", runtime, paths[0], " --int8 PHOTOS" if runtime == "int8" else "")
            continue
        t = time.perf_counter()
        try:
            runner = _load_package(path, device)
        except Exception as exc:  # a damaged or foreign package: the network still runs
            log.warning("%s model %s cannot be loaded (%s); running channels_last", runtime, path, exc)
            continue
        log.info("%s model %s loaded in %.2f s", runtime, path.name, time.perf_counter() - t)
        return runner, runtime
    return module.to(memory_format=torch.channels_last), "channels_last"


def _load_package(path: Path, device: torch.device) -> Callable:
    """The package's runner. torch's C++ loader straight away: `aoti_load_package` would import
    inductor first, 1.2 s of a cold start, for no work of its own here (inputs and outputs are
    flat tensors). Either way the weights come in with the shared library, in milliseconds."""
    import torch

    try:
        index = device.index if device.type == "cuda" and device.index is not None else -1
        loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, index)
    except (AttributeError, TypeError):  # another torch's private signature: the public way
        from torch._inductor import aoti_load_package

        return _in_batches(aoti_load_package(str(path)))

    def run(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(loader.run([x.contiguous(memory_format=torch.channels_last)]))

    return _in_batches(run)


def _in_batches(run: Callable) -> Callable:
    """A package takes batches of at most MAX_BATCH (what it was exported for): larger ones in parts."""
    import torch

    def runner(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(x) <= MAX_BATCH:
            return run(x)
        parts = [run(x[i:i + MAX_BATCH]) for i in range(0, len(x), MAX_BATCH)]
        return tuple(torch.cat(outputs) for outputs in zip(*parts, strict=True))

    return runner


def check_compilable(device: torch.device) -> None:
    """A compile needs a C++ compiler on CPU; say which is missing rather than inductor's trace."""
    import shutil

    if device.type == "cpu" and not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
        raise ModelError("compiling the model needs a C++ compiler: apt-get install g++")
