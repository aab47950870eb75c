"""The inventory-landed Lambda (infra/aws/functions/submit_backfill) against moto's S3 and Batch
APIs over a socket (Batch's Docker-free backend): a manifest.checksum event submits one array job
whose children, with the template's job definition, run `backfill <manifest.json>` on their own
shard; a repeated or concurrent event submits nothing more; a failed submit is retried; other keys
and malformed events submit nothing."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid

import boto3
import pytest

from backfill.shard import Shard
from indexer.cli.main import build_parser
from tests.cfn import RES, load_function

KEY = "photos/pixdex-daily/2026-11-20T01-00Z/manifest.checksum"


def _event(key: str, bucket: str) -> dict:
    """What EventBridge delivers for an S3 "Object Created" (the template's rule matches these)."""
    return {"version": "0", "id": "5b0e3c4c", "detail-type": "Object Created", "source": "aws.s3",
            "account": "123456789012", "region": "us-east-1", "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket},
                       "object": {"key": key, "size": 32, "etag": "d41d8cd98f00b204e9800998ecf8427e"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": "s3.amazonaws.com", "reason": "PutObject"}}


@pytest.fixture
def batch(aws, monkeypatch):
    """A job queue and the template's backfill job definition in moto's Batch, run without Docker."""
    request = urllib.request.Request(f"{aws}/moto-api/config", data=json.dumps({"batch": {"use_docker": False}})
                                     .encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    tag = uuid.uuid4().hex[:8]  # moto's server lives for the whole session: fresh names
    role = boto3.client("iam").create_role(RoleName=f"batch-{tag}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client = boto3.client("batch")
    env = client.create_compute_environment(computeEnvironmentName=f"gpu-spot-{tag}", type="UNMANAGED", state="ENABLED",
                                            serviceRole=role)["computeEnvironmentArn"]
    queue = client.create_job_queue(jobQueueName=f"pixdex-backfill-{tag}", state="ENABLED", priority=1,
                                    computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}])["jobQueueArn"]
    props = RES["BackfillJobDefinition"]["Properties"]
    container = props["ContainerProperties"]
    definition = client.register_job_definition(
        jobDefinitionName="pixdex-backfill", type="container", parameters=props["Parameters"],
        containerProperties={"image": "pixdex-backfill:test", "command": container["Command"],
                             "resourceRequirements": [{"type": r["Type"], "value": r["Value"]}
                                                      for r in container["ResourceRequirements"]]},
    )["jobDefinitionArn"]
    monkeypatch.setenv("JOB_QUEUE", queue)
    monkeypatch.setenv("JOB_DEFINITION", definition)
    monkeypatch.setenv("SHARDS", "4")
    inventory = f"inventory-{tag}"
    boto3.client("s3").create_bucket(Bucket=inventory)
    return client, queue, inventory


def _children(client, job_id: str) -> tuple[dict, list[str], list[Shard]]:
    """The job, the command line its children share with the job's parameters put in, and each
    child's shard."""
    [job] = client.describe_jobs(jobs=[job_id])["jobs"]
    [definition] = client.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"]
    values = {**definition["parameters"], **job["parameters"]}
    command = [values[a.removeprefix("Ref::")] if a.startswith("Ref::") else a
               for a in definition["containerProperties"]["command"]]
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    size = job["arrayProperties"]["size"]
    shards = [Shard.from_env({**env, "AWS_BATCH_JOB_ARRAY_INDEX": str(i)}) for i in range(size)]
    return job, command, shards


def test_a_landed_inventory_starts_one_array_job_over_its_manifest(batch):
    client, _, inventory = batch
    submit = load_function("submit_backfill")
    out = submit.handler(_event(KEY, inventory))
    manifest = f"s3://{inventory}/photos/pixdex-daily/2026-11-20T01-00Z/manifest.json"
    assert out["source"] == manifest and out["shards"] == 4

    job, command, shards = _children(client, out["submitted"])
    assert job["jobName"] == out["name"] and job["jobName"].startswith("pixdex-backfill-")
    args = build_parser().parse_args(["backfill", *command])  # what each child runs, as the backfill reads it
    assert args.source == manifest and args.shard is None and args.max_failure_rate == 0.05
    assert [(s.index, s.count) for s in shards] == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_the_same_inventory_twice_submits_one_job(batch):
    client, queue, inventory = batch
    submit = load_function("submit_backfill")
    first = submit.handler(_event(KEY, inventory))
    again = submit.handler(_event(KEY, inventory))  # EventBridge delivers at least once
    assert again["submitted"] is None and again["existing"] == first["submitted"]
    other = submit.handler(_event(KEY.replace("2026-11-20", "2026-11-21"), inventory))  # the next day's inventory
    assert other["submitted"] not in (None, first["submitted"])
    assert _parents(client, queue) == {first["submitted"], other["submitted"]}


def _parents(client, queue: str) -> set[str]:
    jobs = client.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["pixdex-backfill-*"]}])
    return {j["jobId"].split(":")[0] for j in jobs["jobSummaryList"]}  # moto also lists children (id:N)


def test_concurrent_deliveries_submit_one_job(batch):
    client, queue, inventory = batch
    submit = load_function("submit_backfill")
    start, results = threading.Barrier(4), []

    def deliver():
        start.wait()
        results.append(submit.handler(_event(KEY, inventory)))
    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    submitted = [r["submitted"] for r in results if r["submitted"]]
    assert len(results) == 4 and len(submitted) == 1
    assert _parents(client, queue) == set(submitted)
    claim = json.loads(boto3.client("s3").get_object(
        Bucket=inventory, Key=KEY.replace("manifest.checksum", "pixdex-backfill.json"))["Body"].read())
    assert claim["jobId"] == submitted[0]


def test_a_failed_submit_is_submitted_by_the_retry(batch, monkeypatch):
    client, queue, inventory = batch
    submit = load_function("submit_backfill")
    monkeypatch.setenv("JOB_QUEUE", "no-such-queue")
    with pytest.raises(client.exceptions.ClientException, match="no-such-queue"):
        submit.handler(_event(KEY, inventory))  # Lambda fails; EventBridge retries the event
    monkeypatch.setenv("JOB_QUEUE", queue)
    retried = submit.handler(_event(KEY, inventory))
    assert retried["submitted"] and _parents(client, queue) == {retried["submitted"]}


def test_a_claim_left_by_a_dead_invocation_is_taken_over_once_stale(batch, monkeypatch):
    client, queue, inventory = batch
    submit = load_function("submit_backfill")
    claim = KEY.replace("manifest.checksum", "pixdex-backfill.json")
    boto3.client("s3").put_object(Bucket=inventory, Key=claim, Body=b'{"state": "submitting"}')  # then it died
    assert submit.handler(_event(KEY, inventory))["submitted"] is None  # fresh: maybe still submitting
    monkeypatch.setenv("CLAIM_STALE_SECONDS", "0")
    taken = submit.handler(_event(KEY, inventory))
    assert taken["submitted"] and _parents(client, queue) == {taken["submitted"]}
    assert submit.handler(_event(KEY, inventory))["existing"] == taken["submitted"]  # a finished claim stays


def test_one_shard_submits_a_plain_job(batch, monkeypatch):
    client, _, inventory = batch
    monkeypatch.setenv("SHARDS", "1")  # Batch arrays need 2 children or more
    out = load_function("submit_backfill").handler(_event(KEY, inventory))
    [job] = client.describe_jobs(jobs=[out["submitted"]])["jobs"]
    assert not job.get("arrayProperties", {}).get("size")
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert (Shard.from_env(env).index, Shard.from_env(env).count) == (1, 1)


def test_other_objects_and_bad_events_submit_nothing(batch, monkeypatch):
    client, queue, inventory = batch
    submit = load_function("submit_backfill")
    for key in ("photos/pixdex-daily/2026-11-20T01-00Z/manifest.json", "photos/data/abc.csv.gz",
                "photos/not-a-manifest.checksum"):
        assert submit.handler(_event(key, inventory))["submitted"] is None, key
    with pytest.raises(ValueError, match="missing 'bucket'"):
        submit.handler({"detail-type": "Object Created", "detail": {"object": {"key": KEY}}})
    assert _parents(client, queue) == set()
    monkeypatch.setenv("SHARDS", "many")
    with pytest.raises(ValueError, match="SHARDS='many'"):
        submit.handler(_event(KEY, inventory))


def test_job_names_are_what_batch_accepts():
    submit = load_function("submit_backfill")
    long_key = "a/" * 100 + "2026-11-20T01-00Z/manifest.checksum"
    for key in (KEY, long_key, "manifest.checksum", "ünï cödé/2026-11-20T01-00Z/manifest.checksum"):
        name = submit.job_name(key)
        assert len(name) <= 128 and name[0].isalnum(), name
        assert all((c.isalnum() and c.isascii()) or c in "-_" for c in name), name
    assert submit.job_name(long_key).endswith("2026-11-20T01-00Z")  # the date survives the cut
