"""The Upload page through AppTest: labelled in seconds, kept only with consent, to a folder or
(on S3 deployments) to the bucket, and a bad file explained."""

from __future__ import annotations

import boto3
import pytest
from apptest import run_app

from indexer.catalog import Query, open_catalog
from tests.conftest import StandIn, http_server


@pytest.fixture
def upload_env(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("PIXDEX_CATALOG", settings.catalog)
    monkeypatch.setenv("PIXDEX_THUMBNAILS", str(tmp_path / "thumbs"))
    monkeypatch.setenv("PIXDEX_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.setenv("PIXDEX_DEVICE", "cpu")
    return settings.catalog, tmp_path / "uploads"


def bars(at) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def records(url: str):
    with open_catalog(url) as cat:
        return cat.search(Query()).records


def test_without_consent_the_labels_are_shown_and_nothing_is_kept(upload_env, photos):
    url, uploads = upload_env
    at = run_app("upload.py")
    at.file_uploader(key="files").upload("cat.png", (photos / "cat.png").read_bytes(), "image/png").run()
    assert not at.exception, at.exception
    assert any(t.startswith("**cat** 9") for t in bars(at))
    assert "Not kept" in " ".join(c.value for c in at.caption)
    assert records(url) == [] and not uploads.exists()


def test_with_consent_it_is_stored_indexed_and_linked_once(upload_env, photos):
    url, uploads = upload_env
    at = run_app("upload.py")
    at.checkbox(key="keep").check()
    at.file_uploader(key="files").set_value([("my coffee.jpg", (photos / "coffee.jpg").read_bytes(), "image/jpeg"),
                                             ("../../cat.png", (photos / "cat.png").read_bytes(), "image/png")])
    at.run()
    assert not at.exception, at.exception
    assert len(at.success) == 2
    saved = sorted(p.name.split("-", 1)[1] for p in uploads.iterdir())  # a random prefix, then a safe name
    assert saved == ["cat.png", "my-coffee.jpg"]
    assert {r.uri.rsplit("/", 1)[1].split("-", 1)[1] for r in records(url)} == {"cat.png", "my-coffee.jpg"}
    assert {lb for r in records(url) for lb in r.label_names} >= {"cat", "espresso"}
    assert [link.proto.page for link in at.get("page_link")].count("image") == 2
    at.run()  # a rerun keeps nothing twice
    assert len(records(url)) == 2 and len(list(uploads.iterdir())) == 2


@pytest.mark.parametrize("keep", [False, True])
def test_a_file_that_is_not_an_image_is_explained_and_never_kept(upload_env, keep):
    """With "Keep" ticked, a refused file was stored all the same (a FAILED record, in the Review queue)."""
    url, uploads = upload_env
    at = run_app("upload.py")
    if keep:
        at.checkbox(key="keep").check()
    at.file_uploader(key="files").upload("notes.jpg", b"shopping list: milk\n" * 30, "image/jpeg").run()
    assert not at.exception, at.exception
    assert "Not an image pixdex can label: not an image" in at.error[0].value
    assert records(url) == [] and not (uploads.exists() and any(uploads.iterdir()))


def test_on_an_s3_deployment_uploads_go_to_the_bucket(upload_env, aws, photos, monkeypatch):
    url, uploads = upload_env
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="uploads-bucket")
    monkeypatch.setenv("PIXDEX_UPLOAD_BUCKET", "s3://uploads-bucket/incoming/")
    at = run_app("upload.py")
    at.checkbox(key="keep").check()
    at.file_uploader(key="files").upload("cat.png", (photos / "cat.png").read_bytes(), "image/png").run()
    assert not at.exception, at.exception
    [obj] = s3.list_objects_v2(Bucket="uploads-bucket")["Contents"]
    assert obj["Key"].startswith("incoming/uploads/") and obj["Key"].endswith("-cat.png")
    assert f"s3://uploads-bucket/{obj['Key']}" in at.success[0].value
    assert any(t.startswith("**cat** 9") for t in bars(at))
    assert records(url) == [] and not uploads.exists()  # the bucket's event path indexes it


def test_a_url_is_refused_or_fetched_by_the_safety_rules(upload_env, photos, monkeypatch):

    body = (photos / "coffee.jpg").read_bytes()

    class Photo(StandIn):
        def do_GET(self):
            self.reply(200, body, "image/jpeg")

    with http_server(Photo) as base:
        url = f"{base}/espresso.jpg"
        at = run_app("upload.py")
        at.text_input(key="url").input(url).run()
        assert "Not fetched" in at.error[0].value and "loopback" in at.error[0].value  # the app's own network

        monkeypatch.setenv("PIXDEX_URL_ALLOW", f'["{base.removeprefix("http://")}"]')  # a trusted server
        at = run_app("upload.py")
        at.text_input(key="url").input(url).run()
        assert not at.error and any(t.startswith("**espresso**") for t in bars(at))
        assert "**espresso.jpg**" in [m.value for m in at.markdown]


def test_the_size_the_page_states_is_the_size_the_uploader_takes(upload_env, monkeypatch):
    monkeypatch.setenv("PIXDEX_LIMITS__MAX_BYTES", str(3 * 2 ** 20))
    at = run_app("upload.py")
    uploader = at.file_uploader(key="files")
    assert uploader.proto.max_upload_size_mb == 3  # what Streamlit refuses in the browser and on the server
    assert "Up to 3 MB each" in uploader.proto.help
