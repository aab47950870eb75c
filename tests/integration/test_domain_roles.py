"""The DomainRoles custom resource (infra/aws/functions/domain_roles): signed as the domain's master
role, it gives the indexer, API and backfill roles an OpenSearch role limited to pixdex's indices,
and always answers CloudFormation through the pre-signed S3 URL it is given (moto's S3 here, as a
real stack's is S3).

The domain side is a local HTTP server answering as OpenSearch's security plugin REST API does:
that plugin cannot run on this machine (osmem-server has no security API), so what is checked is
each request pixdex sends and what CloudFormation hears back."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from indexer.settings import Settings
from tests.cfn import RES, load_function
from tests.conftest import StandIn, http_server

ROLES = ["arn:aws:iam::123456789012:role/pixdex-test-IndexerRole-1",
         "arn:aws:iam::123456789012:role/pixdex-test-ApiRole-2",
         "arn:aws:iam::123456789012:role/pixdex-test-BackfillJobRole-3"]


@pytest.fixture
def security_api():
    """Records each request; answers 200 as the plugin does, or `status[0]` when a test sets it."""
    seen, status = [], [200]

    class SecurityApi(StandIn):
        def do_PUT(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append({"method": "PUT", "path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            name = self.path.rsplit("/", 1)[1]
            answer = ({"status": "CREATED", "message": f"'{name}' created."} if status[0] == 200
                      else {"status": "FORBIDDEN", "message": "No permission to access the REST API"})
            self.reply(status[0], json.dumps(answer).encode(), "application/json")

    with http_server(SecurityApi) as url:
        yield url, seen, status


@pytest.fixture
def cloudformation(aws):
    """CloudFormation's side: each event carries a pre-signed PUT URL; read back what was answered."""
    s3 = boto3.client("s3")
    bucket = f"cfn-responses-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)

    def event(request_type: str, endpoint: str) -> tuple[dict, callable]:
        key = f"arn%3Aaws%3Acloudformation/{uuid.uuid4()}"
        url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
        props = RES["DomainRoles"]["Properties"]
        evt = {"RequestType": request_type, "ResponseURL": url, "RequestId": str(uuid.uuid4()),
               "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/pixdex-test/1",
               "LogicalResourceId": "DomainRoles", "ResourceType": "Custom::DomainRoles",
               "ResourceProperties": {**props, "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:x",
                                      "Endpoint": endpoint, "BackendRoles": ROLES}}  # the template's, resolved
        if request_type != "Create":
            evt["PhysicalResourceId"] = "pixdex-domain-roles-DomainRoles"

        def answer() -> dict:
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return evt, answer
    return event


def test_create_maps_the_three_roles_to_an_index_limited_role(security_api, cloudformation):
    endpoint, seen, _ = security_api
    event, answer = cloudformation("Create", endpoint)
    load_function("domain_roles").handler(event)

    reply = answer()
    assert reply["Status"] == "SUCCESS", reply["Reason"]
    assert (reply["RequestId"], reply["LogicalResourceId"]) == (event["RequestId"], "DomainRoles")
    assert reply["Data"]["Role"] == "pixdex"
    role, mapping = seen
    assert role["path"] == "/_plugins/_security/api/roles/pixdex"
    assert mapping["path"] == "/_plugins/_security/api/rolesmapping/pixdex"
    assert mapping["body"] == {"backend_roles": sorted(ROLES)}
    # pixdex's indices and nothing else; no security or cluster-settings permission
    [grant] = role["body"]["index_permissions"]
    assert grant["index_patterns"] == [f"{Settings().index}*"]  # the alias, its indices and its tombstones
    assert grant["allowed_actions"] == ["indices_all"]
    assert role["body"]["cluster_permissions"] == RES["DomainRoles"]["Properties"]["ClusterActions"]
    assert not any("security" in a or "settings" in a or a in ("cluster_all", "*")
                   for a in role["body"]["cluster_permissions"])
    for request in seen:  # signed for OpenSearch Service with the function's credentials
        assert request["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert "/us-east-1/es/aws4_request" in request["headers"]["Authorization"]
        assert request["headers"]["X-Amz-Date"]


def test_a_refused_call_fails_the_resource_with_its_reason(security_api, cloudformation):
    endpoint, seen, status = security_api
    status[0] = 403
    event, answer = cloudformation("Update", endpoint)
    load_function("domain_roles").handler(event)
    reply = answer()
    assert reply["Status"] == "FAILED"
    assert f"PUT {endpoint}/_plugins/_security/api/roles/pixdex: 403" in reply["Reason"]
    assert "No permission" in reply["Reason"]
    assert reply["PhysicalResourceId"] == "pixdex-domain-roles-DomainRoles"  # an update keeps its id
    assert len(seen) == 1  # nothing mapped to a role that was not written


def test_an_unreachable_domain_fails_the_resource(cloudformation):
    from tests.conftest import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    event, answer = cloudformation("Create", endpoint)
    load_function("domain_roles").handler(event)
    reply = answer()
    assert reply["Status"] == "FAILED" and "Connection refused" in reply["Reason"] and endpoint in reply["Reason"]


def test_delete_leaves_the_retained_domain_alone(security_api, cloudformation):
    endpoint, seen, _ = security_api
    event, answer = cloudformation("Delete", endpoint)
    load_function("domain_roles").handler(event)
    assert answer()["Status"] == "SUCCESS" and seen == []


def test_the_template_wires_the_resource_to_the_master_role():
    domain = RES["Domain"]["Properties"]["AdvancedSecurityOptions"]
    assert domain["MasterUserOptions"]["MasterUserARN"] == {"GetAtt": "DomainAdminRole.Arn"}
    assert RES["DomainRolesFunction"]["Properties"]["Role"] == {"GetAtt": "DomainAdminRole.Arn"}
    backend = RES["DomainRoles"]["Properties"]["BackendRoles"]
    assert backend == [{"GetAtt": f"{r}.Arn"} for r in ("IndexerRole", "ApiRole", "BackfillJobRole")]
    # nobody else can assume the master role
    [trust] = RES["DomainAdminRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
