"""indexer.catalog.opensearch.connect: the auth each setting selects (no server is contacted)."""

from __future__ import annotations

import pytest
import requests

from indexer.catalog import CatalogError
from indexer.catalog.opensearch import connect
from indexer.settings import OpenSearchSettings


def auth_of(client):
    return client.transport.connection_pool.connections[0].session.auth


@pytest.mark.parametrize("service", ["es", "aoss"])
def test_sigv4_signs_for_the_service_and_region(service, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = connect("https://search.eu-west-1.es.amazonaws.com",
                     OpenSearchSettings(aws_service=service, aws_region="eu-west-1"))
    signed = auth_of(client)(requests.Request("GET", "https://search.eu-west-1.es.amazonaws.com/_search").prepare())
    assert signed.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert f"/eu-west-1/{service}/aws4_request" in signed.headers["Authorization"]


def test_sigv4_without_credentials_is_a_clear_error(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CatalogError, match="no AWS credentials or region"):
        connect("https://search.example.com", OpenSearchSettings(aws_service="es", aws_region="eu-west-1"))


def test_basic_auth_and_tls_verification():
    client = connect("https://search.example.com:9200", OpenSearchSettings(user="admin", password="s3cret"))
    connection = client.transport.connection_pool.connections[0]
    assert connection.session.auth == ("admin", "s3cret")
    assert connection.use_ssl and connection.session.verify  # a CA bundle path (certifi's or the system's)


def test_a_ca_bundle_is_what_certificates_are_checked_against(tmp_path):
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    client = connect("https://search.example.com:9200", OpenSearchSettings(ca_bundle=bundle))
    assert auth_of(client) is None
    assert client.transport.connection_pool.connections[0].session.verify == str(bundle)
