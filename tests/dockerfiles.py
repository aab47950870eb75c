"""Reading the Dockerfiles in infra/docker/ without a Docker engine (the tests of both images)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "infra" / "docker"


def instructions(dockerfile: str) -> list[str]:
    """A Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    return [i.strip() for i in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if i.strip()]


def stages(dockerfile: str) -> dict[str, list[str]]:
    """Each build stage's instructions by its name (`FROM x AS name`); the unnamed last one is ''."""
    out: dict[str, list[str]] = {}
    current = None
    for line in instructions(dockerfile):
        if line.startswith("FROM "):
            words = line.split()
            current = words[3] if len(words) == 4 and words[2].upper() == "AS" else ""
            out[current] = []
        out[current].append(line)
    return out


def copied_sources(line: str) -> list[str]:
    """What a COPY takes from the build context (none for a COPY --from another stage)."""
    args = shlex.split(line)[1:]
    return [] if any(a.startswith("--from=") for a in args) else args[:-1]


def commands(line: str) -> list[list[str]]:
    """A RUN's shell commands (split at &&), each as its words."""
    return [shlex.split(part) for part in line.removeprefix("RUN ").split("&&")]
