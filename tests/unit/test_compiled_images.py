"""Both container images ship the compiled classifier (indexer/model/runtimes.py), checked without a
Docker engine: a stage with a compiler builds the portable packages with commands the real CLI
accepts, and the image the function or job runs copies them to where its settings look."""

from __future__ import annotations

import re
import tomllib

import pytest

from indexer.cli.main import build_parser
from tests.dockerfiles import DOCKER, ROOT, commands, stages

IMAGES = ["lambda.Dockerfile", "backfill.Dockerfile"]
COMPILER = re.compile(r"install .*\b(g\+\+|gcc-c\+\+)(\s|$)")
TORCHAO = next(p for p in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
               ["compile"] if p.startswith("torchao"))


def compiles(stage: list[str]) -> list[list[str]]:
    runs = [c for line in stage if line.startswith("RUN ") for c in commands(line)]
    return [c for c in runs if c[:2] == ["pixdex", "compile-model"]]


@pytest.mark.parametrize("name", IMAGES)
def test_a_compile_stage_builds_both_portable_packages_with_the_cli(name):
    built = stages((DOCKER / name).read_text())
    assert "compile" in built and "base" in built
    stage = built["compile"]
    assert stage[0] == "FROM base AS compile"  # the same torch and pixdex as the image that runs them
    assert any(COMPILER.search(line) for line in stage), "inductor's C++ needs g++"
    assert any(f"pip install --no-cache-dir {TORCHAO}" in line for line in stage), "the int8 model needs torchao"
    runs = compiles(stage)
    assert len(runs) == 2
    for argv in runs:
        args = build_parser().parse_args(argv[1:])  # a command line pixdex accepts
        assert args.portable and args.device == "cpu"  # built for the CPUs it will run on, not the builder's
    calibrated = [a for a in runs if "--int8" in a]
    assert len(calibrated) == 1
    folder = calibrated[0][calibrated[0].index("--int8") + 1]
    copied = [line.split()[-1] for line in stage if line.startswith("COPY ")]
    assert copied and all(c.startswith(folder + "/") for c in copied)  # calibrated on the photos copied in


@pytest.mark.parametrize("name", IMAGES)
def test_the_image_that_runs_gets_the_packages_where_its_settings_look(name):
    built = stages((DOCKER / name).read_text())
    env = " ".join(line for line in built["base"] if line.startswith("ENV "))
    folder = re.search(r"PIXDEX_MODEL_COMPILED=(\S+)", env)[1]
    assert f"COPY --from=compile {folder} {folder}" in built[""]
    assert not compiles(built[""])
    assert not any(COMPILER.search(line) for line in built[""])  # no compiler in what runs
