"""infra/local/compose.yaml, checked without a Docker engine: the three services, pinned images,
ports only on localhost, and the ports the README and settings point at."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "infra" / "local" / "compose.yaml").read_text())


def test_opensearch_dashboards_and_minio_with_pinned_images():
    services = COMPOSE["services"]
    assert set(services) == {"opensearch", "dashboards", "minio"}
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name


def test_ports_are_bound_to_localhost_only():
    published = {p for s in COMPOSE["services"].values() for p in s.get("ports", [])}
    assert published == {"127.0.0.1:9200:9200", "127.0.0.1:5601:5601", "127.0.0.1:9000:9000", "127.0.0.1:9001:9001"}


def test_dashboards_waits_for_a_healthy_opensearch():
    dashboards = COMPOSE["services"]["dashboards"]
    assert dashboards["depends_on"]["opensearch"]["condition"] == "service_healthy"
    assert "http://opensearch:9200" in dashboards["environment"]["OPENSEARCH_HOSTS"]
    assert "healthcheck" in COMPOSE["services"]["opensearch"]
