"""Gives pixdex's roles their OpenSearch permissions, as a CloudFormation custom resource.

The domain's fine-grained access control has one master user: the DomainAdmin role, which only
this function assumes. On each create or update of the stack it signs, as that role, two calls to
the security plugin's REST API:

- PUT _plugins/_security/api/roles/<role>: the resource's IndexPatterns with its IndexActions,
  and its ClusterActions (the template gives pixdex's indices, `indices_all` on them, and the
  cluster actions a catalogue needs: bulk, mget, templates, health);
- PUT _plugins/_security/api/rolesmapping/<role>: the indexer's, the API's and the backfill's
  IAM role ARNs as its backend roles.

No pixdex role can then touch another index, the cluster's settings or the security plugin. The
role is defined by the resource's properties, so editing it in the template updates the resource
and this runs again. On delete it does nothing: the domain is retained with its data. Runs on the Lambda Python runtime
(boto3 and botocore are there); nothing from pixdex is imported.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


def role_body(props: dict) -> dict:
    """The security plugin's role document, from the custom resource's properties."""
    return {
        "description": "pixdex: read and write its own indices, nothing else",
        "cluster_permissions": list(props["ClusterActions"]),
        "index_permissions": [{"index_patterns": list(props["IndexPatterns"]),
                               "allowed_actions": list(props["IndexActions"])}],
    }


class DomainCallFailed(RuntimeError):
    pass


def call(endpoint: str, method: str, path: str, body: dict | None, region: str) -> dict:
    """One signed request to the domain (SigV4, service "es"), as this function's role."""
    data = json.dumps(body).encode() if body is not None else None
    request = AWSRequest(method=method, url=endpoint.rstrip("/") + path, data=data,
                         headers={"Content-Type": "application/json"})
    credentials = boto3.Session().get_credentials().get_frozen_credentials()
    SigV4Auth(credentials, "es", region).add_auth(request)
    # the endpoint is the template's own domain (https://)
    prepared = urllib.request.Request(request.url, data=data, method=method, headers=dict(request.headers))  # noqa: S310
    try:
        with urllib.request.urlopen(prepared, timeout=20) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        raise DomainCallFailed(f"{method} {endpoint}{path}: {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:  # a wrong security group or subnet times out here
        raise DomainCallFailed(f"{method} {endpoint}{path}: {getattr(exc, 'reason', exc)}") from exc


def apply(props: dict, region: str) -> dict:
    endpoint, role = props["Endpoint"], props["RoleName"]
    backend_roles = sorted(set(props["BackendRoles"]))
    call(endpoint, "PUT", f"/_plugins/_security/api/roles/{role}", role_body(props), region)
    call(endpoint, "PUT", f"/_plugins/_security/api/rolesmapping/{role}", {"backend_roles": backend_roles}, region)
    return {"Role": role, "BackendRoles": ",".join(backend_roles)}


def respond(event: dict, status: str, reason: str, data: dict | None = None) -> None:
    """The answer CloudFormation waits for: a PUT of this JSON to the event's pre-signed S3 URL."""
    body = json.dumps({
        "Status": status, "Reason": reason[:3000],
        "PhysicalResourceId": event.get("PhysicalResourceId") or f"pixdex-domain-roles-{event['LogicalResourceId']}",
        "StackId": event["StackId"], "RequestId": event["RequestId"], "LogicalResourceId": event["LogicalResourceId"],
        "Data": data or {},
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",  # noqa: S310 (CloudFormation's URL)
                                     headers={"Content-Type": "", "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
        response.read()


def handler(event: dict, context=None) -> None:
    """Always answers CloudFormation, or the stack would wait an hour for this resource."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    try:
        if event["RequestType"] == "Delete":
            respond(event, "SUCCESS", "nothing to undo: the domain is retained")
            return
        data = apply(event["ResourceProperties"], region)
        respond(event, "SUCCESS", f"role {data['Role']} mapped to {data['BackendRoles']}", data)
    except Exception as exc:  # any failure must reach CloudFormation as FAILED, with its reason
        respond(event, "FAILED", f"{type(exc).__name__}: {exc}")
