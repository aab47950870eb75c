"""infra/docker/backfill.Dockerfile and infra/batch/, checked without Docker or AWS: what the image
copies exists, its entrypoint runs the backfill on the base image's CUDA torch, and the Batch job
definition, with the submit example's values, is a command line the real CLI accepts."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from indexer.cli.main import build_parser
from tests.dockerfiles import copied_sources, instructions

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "infra" / "docker" / "backfill.Dockerfile").read_text()
BATCH = ROOT / "infra" / "batch"
JOB = json.loads((BATCH / "backfill-job-definition.json").read_text())
SUBMIT = json.loads((BATCH / "submit-array-job.json").read_text())
PINNED_TORCH = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M).group(1)


def _instructions() -> list[str]:
    return instructions(DOCKERFILE)


def _entrypoint() -> list[str]:
    [line] = [i for i in _instructions() if i.startswith("ENTRYPOINT ")]
    return json.loads(line.removeprefix("ENTRYPOINT "))


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def _command_with_submit_values() -> list[str]:
    values = {**JOB.get("parameters", {}), **SUBMIT.get("parameters", {})}
    return [values[arg.removeprefix("Ref::")] if arg.startswith("Ref::") else arg
            for arg in JOB["containerProperties"]["command"]]


# the image


def test_on_a_cuda_pytorch_runtime_image_carrying_the_pinned_torch():
    base = next(i.split()[1] for i in _instructions() if i.startswith("FROM "))
    m = re.fullmatch(r"pytorch/pytorch:(\d+\.\d+\.\d+)-cuda(\d+\.\d+)-cudnn\d+-runtime", base)
    assert m, base
    assert m[1] == PINNED_TORCH, f"the base image carries torch {m[1]}, constraints.txt pins {PINNED_TORCH}"


def test_everything_it_copies_exists():
    copies = [i for i in _instructions() if i.startswith("COPY ")]
    assert copies
    for line in copies:
        for src in copied_sources(line):
            assert (ROOT / src).exists(), src
    copied = {src for line in copies for src in copied_sources(line)}
    assert {"pyproject.toml", "indexer", "backfill"} <= copied


def test_installs_pixdex_with_the_parquet_extra_keeping_the_base_torch():
    [install] = [i for i in _instructions() if " pip install " in i and "/tmp/pixdex" in i]
    assert "[parquet]" in install
    assert "-c /tmp/pixdex/constraints.txt" in install
    # the base image's own torch build, written at build time, constrains the install
    written = re.search(r"torch\.__version__.*> (\S+)", install)
    assert written and f"-c {written[1]}" in install, "no constraint from the base image's torch"


def test_never_pip_installs_torch_itself():
    installs = [cmd.split("pip install", 1)[1] for i in _instructions() for cmd in re.split(r"&&|;", i)
                if "pip install" in cmd]
    assert installs
    for args in installs:  # no torch, torch==..., 'torch>=...' among the requirements
        assert not re.search(r"(^|\s)['\"]?torch([<>=!~;\s'\"\[]|$)", args), args


def test_entrypoint_runs_the_backfill_module():
    python, flag, module = _entrypoint()
    assert python in {"python", "python3"} and flag == "-m"
    assert module == "backfill"
    assert importlib.util.find_spec(f"{module}.__main__") is not None


def test_runs_as_a_user_with_unbuffered_output_and_device_auto():
    users = [i.split()[1] for i in _instructions() if i.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    env = " ".join(i for i in _instructions() if i.startswith("ENV "))
    assert "PYTHONUNBUFFERED=1" in env
    assert "PIXDEX_DEVICE=auto" in env


# the Batch job definition and the submit example


def test_job_definition_shape():
    assert JOB["jobDefinitionName"] == SUBMIT["jobDefinition"] == "pixdex-backfill"
    assert JOB["type"] == "container"
    assert JOB["platformCapabilities"] == ["EC2"]
    assert JOB["containerProperties"]["logConfiguration"]["logDriver"] == "awslogs"


def test_job_asks_for_a_gpu():
    resources = {r["type"]: r["value"] for r in JOB["containerProperties"]["resourceRequirements"]}
    assert int(resources["GPU"]) >= 1
    assert int(resources["VCPU"]) >= 1 and int(resources["MEMORY"]) > 0


def test_spot_reclaims_are_retried_and_application_errors_are_not():
    strategy = JOB["retryStrategy"]
    assert strategy["attempts"] > 1
    rules = strategy["evaluateOnExit"]
    retry = [n for n, r in enumerate(rules) if r.get("onStatusReason") == "Host EC2*" and r["action"] == "RETRY"]
    catch_all = [n for n, r in enumerate(rules) if r.get("onReason") == "*" and r["action"] == "EXIT"]
    assert retry and catch_all, rules
    # Batch applies the first rule that matches: the RETRY must come before the catch-all EXIT,
    # and a catch-all is needed at all because an exit no rule matches is retried
    assert retry[0] < catch_all[0] == len(rules) - 1
    assert [r["action"] for r in rules[: catch_all[0]]] == ["RETRY"] * catch_all[0]


def test_every_ref_in_the_command_has_a_value():
    refs = {a.removeprefix("Ref::") for a in JOB["containerProperties"]["command"] if a.startswith("Ref::")}
    assert "source" in refs
    missing = refs - JOB.get("parameters", {}).keys() - SUBMIT.get("parameters", {}).keys()
    assert not missing


def test_the_command_is_what_the_cli_accepts():
    command = _command_with_submit_values()
    assert not any("Ref::" in a for a in command)
    args = build_parser().parse_args(["backfill", *command])
    assert args.source == SUBMIT["parameters"]["source"]
    assert args.source.startswith("s3://") and args.source.endswith("/manifest.json")
    assert args.max_failure_rate == float(JOB["parameters"]["max_failure_rate"])


def test_the_command_does_not_fix_the_shard():
    # each child's shard comes from AWS_BATCH_JOB_ARRAY_INDEX and PIXDEX_SHARDS, never --shard
    args = build_parser().parse_args(["backfill", *_command_with_submit_values()])
    assert args.shard is None


def test_submit_passes_the_array_size_as_pixdex_shards():
    size = SUBMIT["arrayProperties"]["size"]
    assert size > 1
    assert _env(SUBMIT["containerOverrides"])["PIXDEX_SHARDS"] == str(size)
    # the job definition sets none: an array child without it fails at once, naming PIXDEX_SHARDS,
    # instead of one child labelling everything
    assert "PIXDEX_SHARDS" not in _env(JOB["containerProperties"])


def test_the_children_of_the_example_take_disjoint_shards_covering_everything():
    from backfill.shard import Shard

    size = SUBMIT["arrayProperties"]["size"]
    env = {**_env(JOB["containerProperties"]), **_env(SUBMIT["containerOverrides"])}  # the override wins
    shards = [Shard.from_env({**env, "AWS_BATCH_JOB_ARRAY_INDEX": str(index)}) for index in range(size)]
    assert [(s.index, s.count) for s in shards] == [(i + 1, size) for i in range(size)]


def test_the_face_weights_come_with_the_image_without_their_pins():
    assert any("--no-deps facenet-pytorch==2.6.0" in i for i in _instructions() if i.startswith("RUN "))
