"""infra/aws: the SAM template passes cfn-lint and checkov (every skipped check justified
inline), and says what the deployment needs, checked without an AWS account."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cfn import DOC, FUNCTIONS, RES, ROOT, TEMPLATE

CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


def test_cfn_lint_is_clean():
    proc = subprocess.run([CFN_LINT, str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checkov_finds_no_failed_check():
    checkov = os.environ.get("PIXDEX_CHECKOV")
    if not checkov:
        pytest.skip("checkov runs from make test (.venv-tools); PIXDEX_CHECKOV names it")
    proc = subprocess.run([checkov, "-f", str(TEMPLATE), "--framework", "cloudformation", "--skip-download",
                           "--quiet", "--output", "json"], capture_output=True, text=True, timeout=600)
    report = json.loads(proc.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and report["summary"]["passed"] > 50


def test_every_skipped_check_says_why():
    for name, res in RES.items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]) and len(skip.get("comment", "")) > 30, (name, skip)


def test_the_bucket_is_private_encrypted_versioned_and_notifies_the_queue():
    props = RES["ImagesBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    events = {q["Event"] for q in props["NotificationConfiguration"]["QueueConfigurations"]}
    assert events == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}
    assert RES["EventsQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5


def test_the_indexer_reports_batch_item_failures_with_reserved_concurrency():
    props = RES["IndexerFunction"]["Properties"]
    assert props["ImageConfig"]["Command"] == ["indexer.aws.handler.lambda_handler"]
    assert props["Events"]["Uploads"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "ReservedConcurrentExecutions" in props
    assert RES["ApiFunction"]["Properties"]["ImageConfig"]["Command"] == ["indexer.aws.api.lambda_handler"]


def test_every_function_image_command_names_a_handler_that_imports():
    commands = [r["Properties"]["ImageConfig"]["Command"] for r in RES.values()
                if r["Type"] == "AWS::Serverless::Function" and "ImageConfig" in r.get("Properties", {})]
    assert len(commands) >= 2
    for [handler] in commands:
        module, function = handler.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), function)), handler


def test_the_indexer_role_reads_images_only():
    statements = RES["IndexerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not {a for a in actions if a.startswith("s3:") and a not in ("s3:GetObject", "s3:GetObjectVersion",
                                                                       "s3:ListBucket")}
    assert "*" not in json.dumps(statements).replace("/*", "").replace("ESHttp*", "")


def test_the_api_routes_are_the_resolvers_and_use_cognito():
    events = RES["ApiFunction"]["Properties"]["Events"].values()
    routes = {(e["Properties"]["Method"].upper(), e["Properties"]["Path"]) for e in events}
    assert routes == {("POST", "/images"), ("POST", "/uploads"), ("GET", "/images/{id}"), ("DELETE", "/images/{id}"),
                      ("GET", "/search"), ("GET", "/labels")}  # indexer/aws/api.py's routes
    assert RES["Api"]["Properties"]["Auth"]["DefaultAuthorizer"] == "Cognito"
    assert RES["Api"]["Properties"]["BinaryMediaTypes"] == ["image~1*"]  # image bodies arrive base64-encoded


def test_the_backfill_job_retries_spot_reclaims_and_takes_its_shards_from_the_array():
    job = RES["BackfillJobDefinition"]["Properties"]
    assert job["RetryStrategy"]["EvaluateOnExit"] == [{"OnStatusReason": "Host EC2*", "Action": "RETRY"},
                                                      {"OnReason": "*", "Action": "EXIT"}]
    assert {"Type": "GPU", "Value": "1"} in job["ContainerProperties"]["ResourceRequirements"]
    assert RES["BatchComputeEnvironment"]["Properties"]["ComputeResources"]["Type"] == "SPOT"
    # the inventory-landed function's code (run against Batch in tests/integration/test_submit_backfill)
    submit = RES["SubmitBackfillFunction"]["Properties"]
    assert (FUNCTIONS / submit["CodeUri"].removeprefix("functions/") / "app.py").is_file()
    assert submit["Handler"] == "app.handler"


def test_every_environment_is_configured():
    import tomllib

    config = tomllib.loads((ROOT / "infra" / "aws" / "samconfig.toml").read_text())
    declared = set(DOC["Parameters"])
    for env in ("test", "staging", "prod"):
        overrides = config[env]["deploy"]["parameters"]["parameter_overrides"]
        given = {o.split("=", 1)[0] for o in overrides}
        assert f"Env={env}" in overrides and given <= declared, env
        required = {n for n, p in DOC["Parameters"].items() if "Default" not in p}
        assert required <= given, (env, required - given)


def test_deployable_details():
    # every traced function's role may write to X-Ray (Lambda refuses Tracing: Active otherwise)
    assert DOC["Globals"]["Function"]["Tracing"] == "Active"
    for name, res in RES.items():
        if res["Type"] == "AWS::Serverless::Function":
            role = RES[res["Properties"]["Role"]["GetAtt"].split(".")[0]]
            policies = json.dumps(role["Properties"]["ManagedPolicyArns"])
            assert "AWSXRayDaemonWriteAccess" in policies, name
    # data nodes: an even count across the two zones
    count = RES["Domain"]["Properties"]["ClusterConfig"]["InstanceCount"]["If"]
    assert all(n % 2 == 0 for n in count[1:])
    # the SQS source stops at its maximum instead of being throttled into the dead-letter queue
    uploads = RES["IndexerFunction"]["Properties"]["Events"]["Uploads"]["Properties"]
    assert uploads["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "IndexerConcurrency"}
    assert "DomainLogsPolicy" in str(RES["Domain"]["DependsOn"])


def _statements(role: str) -> list[dict]:
    return [st for pol in RES[role]["Properties"]["Policies"] for st in pol["PolicyDocument"]["Statement"]]


def test_the_roles_reach_this_stacks_domain_only():
    for role in ("IndexerRole", "ApiRole", "BackfillJobRole"):
        [es] = [st for st in _statements(role) if "es:" in json.dumps(st["Action"])]
        arn, names = es["Resource"]["Sub"]
        assert arn.endswith(":domain/${Name}/*"), role
        assert names["Name"]["If"][1:] == [{"Sub": "pixdex-${Env}"}, {"Ref": "OpenSearchDomainName"}], role
    assert RES["Domain"]["Properties"]["DomainName"] == {"Sub": "pixdex-${Env}"}
    [grant] = RES["Domain"]["Properties"]["AccessPolicies"]["Statement"]
    assert grant["Resource"]["Sub"].endswith(":domain/pixdex-${Env}/*")
    # the master role only reaches the security API (its own policy; the domain's names it not)
    assert {"GetAtt": "DomainAdminRole.Arn"} not in grant["Principal"]["AWS"]
    [admin] = _statements("DomainAdminRole")
    assert admin["Resource"]["Sub"].endswith(":domain/pixdex-${Env}/_plugins/_security/*")


def test_the_queue_takes_events_from_this_stacks_bucket_only():
    [grant] = RES["EventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    bucket = RES["ImagesBucket"]["Properties"]["BucketName"]["Sub"]
    assert grant["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Sub": f"arn:${{AWS::Partition}}:s3:::{bucket}"}


def test_a_web_acl_guards_the_api_without_refusing_image_bodies():
    acl = RES["ApiWebAcl"]["Properties"]
    rules = {r["Name"]: r["Statement"] for r in acl["Rules"]}
    assert rules["per-address-rate"]["RateBasedStatement"]["Limit"] == {"Ref": "ApiRequestsPerIpPer5Min"}
    common = rules["common"]["ManagedRuleGroupStatement"]
    # the common rule set blocks bodies over 8 KB; POST /images takes images up to the Lambda limit
    assert {"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}} in common["RuleActionOverrides"]
    association = RES["ApiWebAclAssociation"]["Properties"]
    assert association["ResourceArn"]["Sub"].endswith("/restapis/${Api}/stages/${Api.Stage}")
    assert RES["ApiWebAclLogs"]["Properties"]["LogGroupName"]["Sub"].startswith("aws-waf-logs-")
