"""`pixdex dashboards import` as a user runs it. OpenSearch Dashboards cannot run here (no JVM
cluster, no Node distribution), so a small HTTP server stands in for its saved-objects import
endpoint and answers the way the Dashboards API documents: the test checks what pixdex sends
(multipart `file`, `osd-xsrf`, `overwrite=true`, basic auth) and what it says back."""

from __future__ import annotations

import base64
import email.parser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from tests.conftest import StandIn, http_server

NDJSON = Path(__file__).resolve().parents[2] / "indexer" / "data" / "dashboards.ndjson"


class ImportEndpoint(StandIn):
    received: ClassVar[list[dict]] = []
    refuse = False

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        message = email.parser.BytesParser().parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
        files = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                 for part in message.get_payload()}
        ImportEndpoint.received.append({"path": self.path, "xsrf": self.headers.get("osd-xsrf"),
                                        "auth": self.headers.get("Authorization"), "file": files.get("file")})
        lines = files.get("file", b"").decode().splitlines()
        if self.refuse:
            answer = {"success": False, "successCount": 0, "errors": [{"id": "pixdex-images", "error": {
                "type": "conflict"}}]}
        else:
            answer = {"success": True, "successCount": len(lines)}
        self.reply(200, json.dumps(answer).encode(), "application/json; charset=utf-8")


@pytest.fixture
def dashboards():
    ImportEndpoint.received, ImportEndpoint.refuse = [], False
    with http_server(ImportEndpoint) as url:
        yield url


def pixdex(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indexer.cli", "dashboards", "import", *args],
                          capture_output=True, text=True, env={**os.environ, **env})


def test_import_sends_the_saved_objects_as_dashboards_expects(dashboards):
    run = pixdex(dashboards, PIXDEX_OPENSEARCH__USER="admin", PIXDEX_OPENSEARCH__PASSWORD="s3cret")
    assert run.returncode == 0, run.stderr
    assert "imported 8 saved objects" in run.stdout and "pixdex overview" in run.stdout
    [request] = ImportEndpoint.received
    assert request["path"] == "/api/saved_objects/_import?overwrite=true"
    assert request["xsrf"] == "true"
    assert request["auth"] == "Basic " + base64.b64encode(b"admin:s3cret").decode()
    assert request["file"] == NDJSON.read_bytes()


def test_what_is_sent_holds_the_date_taken_chart_and_the_map_and_every_reference_resolves(dashboards):
    """The file as Dashboards receives it: photos per month taken (a date_histogram on taken_at, by
    calendar month) and the coordinate map (tile_map, a geohash_grid on the location geo_point) are
    panels of the dashboard, and nothing in it points at an object the file lacks."""
    run = pixdex(dashboards)
    assert run.returncode == 0, run.stderr
    [request] = ImportEndpoint.received
    objects = [json.loads(line) for line in request["file"].decode().splitlines()]
    by_id = {o["id"]: o for o in objects}
    assert len(by_id) == len(objects)

    def bucket_agg(vid: str) -> tuple[str, dict]:
        state = json.loads(by_id[vid]["attributes"]["visState"])
        [agg] = [a for a in state["aggs"] if a["schema"] == "segment"]
        return state["type"], agg

    kind, per_month = bucket_agg("pixdex-photos-per-month-taken")
    assert (kind, per_month["type"], per_month["params"]["field"], per_month["params"]["interval"]) == (
        "histogram", "date_histogram", "taken_at", "M")
    kind, where = bucket_agg("pixdex-photo-locations")
    assert (kind, where["type"], where["params"]["field"]) == ("tile_map", "geohash_grid", "location")
    fields = {f["name"]: f for f in json.loads(by_id["pixdex-images"]["attributes"]["fields"])}
    assert (fields["taken_at"]["type"], fields["location"]["type"], fields["camera"]["type"]) == (
        "date", "geo_point", "string")

    for o in objects:
        for ref in o["references"]:
            assert ref["id"] in by_id and by_id[ref["id"]]["type"] == ref["type"], (o["id"], ref)
        source = json.loads(o["attributes"].get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}"))
        if "indexRefName" in source:
            assert source["indexRefName"] in {r["name"] for r in o["references"]}, o["id"]
    dashboard = by_id["pixdex-overview"]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    refs = {r["name"]: r["id"] for r in dashboard["references"]}
    assert len({p["panelIndex"] for p in panels}) == len(panels)
    assert {refs[p["panelRefName"]] for p in panels} >= {"pixdex-photos-per-month-taken", "pixdex-photo-locations"}


def test_a_refused_import_says_why(dashboards):
    ImportEndpoint.refuse = True
    run = pixdex(dashboards)
    assert run.returncode == 1 and "Dashboards refused the import" in run.stderr and "conflict" in run.stderr


def test_unreachable_dashboards_and_a_missing_file(tmp_path):
    run = pixdex("http://127.0.0.1:9")
    assert run.returncode == 2 and "cannot reach OpenSearch Dashboards at http://127.0.0.1:9" in run.stderr
    run = pixdex("http://127.0.0.1:9", "--file", str(tmp_path / "none.ndjson"))
    assert run.returncode == 2 and "no saved objects file" in run.stderr


def test_import_works_from_an_installed_wheel(dashboards, tmp_path):
    """The saved objects are package data: a wheel carries them, no checkout needed."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(root)], check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / "dist").glob("pixdex-*.whl")
    site = tmp_path / "site"
    shutil.unpack_archive(wheel, site, "zip")
    code = ("import sys, indexer.cli.main as m; print(m.__file__, flush=True); "
            f"sys.exit(m.main(['dashboards', 'import', {dashboards!r}]))")
    run = subprocess.run([sys.executable, "-c", code], cwd=site, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(site)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(site))  # the wheel's copy ran, not the checkout's
    assert "imported 8 saved objects" in run.stdout
    assert ImportEndpoint.received[0]["file"] == NDJSON.read_bytes()
