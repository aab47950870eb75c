"""infra/docker/lambda.Dockerfile, checked without a Docker engine: what it copies exists, its
handler imports, and it pins the torch the environment pins."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tests.dockerfiles import copied_sources

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "infra" / "docker" / "lambda.Dockerfile").read_text()


def test_on_the_lambda_python_base_image():
    assert re.search(r"^FROM public\.ecr\.aws/lambda/python:3\.1[1-9] AS base$", DOCKERFILE, re.M)


def test_the_handler_it_names_is_importable():
    [handler] = re.findall(r'^CMD \["([\w.]+)"\]$', DOCKERFILE, re.M)
    module, function = handler.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), function))


def test_everything_it_copies_exists():
    for line in re.findall(r"^COPY .+$", DOCKERFILE, re.M):
        for src in copied_sources(line):
            assert (ROOT / src).exists(), src


def test_cpu_torch_pinned_as_the_environment_pins_it():
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M).group(1)
    assert f"torch=={pinned} --index-url https://download.pytorch.org/whl/cpu" in DOCKERFILE


def test_the_face_weights_come_with_the_image_without_their_pins():
    assert "pip install --no-cache-dir --no-deps facenet-pytorch==2.6.0" in DOCKERFILE
