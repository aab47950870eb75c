"""indexer.sources.s3 against moto's S3 server: reads, heads, listings and the three ways a read fails."""

from __future__ import annotations

import pytest

from indexer.images import ImageError
from indexer.settings import ImageLimits
from indexer.sources.base import ObjectMissing, ReadError, SourceItem, SourceUnavailable
from indexer.sources.s3 import S3Source, s3_uri, split_s3_uri
from tests.conftest import StandIn, http_server


@pytest.fixture
def source(settings, aws) -> S3Source:
    return S3Source(settings)


def test_read_returns_the_bytes_and_what_the_store_says(bucket, source, photos):
    data = (photos / "coffee.jpg").read_bytes()
    put = bucket.put("a b/coffee+.jpg", data)
    fetched = source.read(SourceItem(uri=s3_uri(bucket.name, "a b/coffee+.jpg")))
    assert fetched.data == data
    item = fetched.item
    assert (item.bucket, item.key, item.size, item.etag) == (bucket.name, "a b/coffee+.jpg", len(data),
                                                            put["ETag"].strip('"'))
    assert item.last_modified is not None


def test_head_and_list(bucket, source, photos):
    for key in ("p/1.jpg", "p/2.jpg", "q/3.jpg"):
        bucket.put(key, (photos / "coffee.jpg").read_bytes())
    assert source.head(s3_uri(bucket.name, "p/1.jpg")).size == (photos / "coffee.jpg").stat().st_size
    assert source.head(s3_uri(bucket.name, "p/missing.jpg")) is None
    assert [i.key for i in source.list(bucket.name, "p/")] == ["p/1.jpg", "p/2.jpg"]


def test_an_object_over_the_cap_is_refused_before_it_is_read(bucket, settings, aws, photos):
    bucket.put("big.png", (photos / "cat.png").read_bytes())
    small = S3Source(settings.model_copy(update={"limits": ImageLimits(max_bytes=1000)}))
    with pytest.raises(ImageError, match="too large"):
        small.read(SourceItem(uri=s3_uri(bucket.name, "big.png")))  # size known only from GET
    # what an event said of the size decides nothing: the object as it is now does (issue: late events)
    with pytest.raises(ObjectMissing, match="no longer exists"):
        small.read(SourceItem(uri=s3_uri(bucket.name, "absent.png"), size=5000))


def test_failures_say_what_to_do(bucket, source, settings):
    with pytest.raises(ObjectMissing, match="no longer exists"):
        source.read(SourceItem(uri=s3_uri(bucket.name, "gone.jpg")))
    with pytest.raises(ReadError, match=r"NoSuchBucket.*bucket name"):
        source.read(SourceItem(uri=s3_uri("no-such-bucket-here", "x.jpg")))
    down = S3Source(settings.model_copy(update={"s3_endpoint": "http://127.0.0.1:9", "aws_max_attempts": 1}))
    with pytest.raises(SourceUnavailable, match="unreachable"):
        down.read(SourceItem(uri=s3_uri(bucket.name, "x.jpg")))
    with pytest.raises(SourceUnavailable):
        down.head(s3_uri(bucket.name, "x.jpg"))


def test_s3_uris():
    assert split_s3_uri("s3://b/a b/c+d%.jpg") == ("b", "a b/c+d%.jpg")
    with pytest.raises(ValueError, match="not an s3://bucket/key URI"):
        split_s3_uri("https://b/x.jpg")


# -- faults moto cannot produce: a small HTTP server that answers the way a failing S3 does -------

class FaultyS3(StandIn):
    """GET sends 500 of the 1000 bytes it announces, then hangs up; HEAD answers with the status
    and error code in `head`."""

    head: tuple[int, str] = (403, "AccessDenied")
    get: tuple[int, str] | None = None  # an error for GET instead of the short body

    def do_GET(self):
        if self.get:
            return self._error(*self.get)
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.send_header("ETag", '"abc"')
        self.end_headers()
        self.wfile.write(b"\xff" * 500)
        self.wfile.flush()
        self.close_connection = True

    def do_HEAD(self):
        self.send_response(self.head[0])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _error(self, status: int, code: str):
        self.reply(status, f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode(), "application/xml")


@pytest.fixture
def faulty(settings, aws, monkeypatch):
    with http_server(FaultyS3) as endpoint:
        yield S3Source(settings.model_copy(update={"s3_endpoint": endpoint, "aws_max_attempts": 1}))
    FaultyS3.get = None


def test_a_body_cut_short_is_retried_not_recorded_as_corrupt(faulty):
    with pytest.raises(SourceUnavailable, match="500 of 1000 bytes"):
        faulty.read(SourceItem(uri="s3://b/photo.jpg"))


@pytest.mark.parametrize("code", ["ExpiredToken", "RequestTimeTooSkewed", "SlowDown"])
def test_expired_credentials_and_throttling_are_transient(faulty, code):
    FaultyS3.get = (400 if code != "SlowDown" else 503, code)
    with pytest.raises(SourceUnavailable, match=code):
        faulty.read(SourceItem(uri="s3://b/photo.jpg"))


def test_a_403_names_both_causes(faulty):
    FaultyS3.get = (403, "AccessDenied")
    with pytest.raises(ReadError, match=r"s3:GetObject.*s3:ListBucket"):
        faulty.read(SourceItem(uri="s3://b/photo.jpg"))


def test_a_removal_is_applied_when_s3_will_not_say_what_is_left(faulty, settings, labeller, catalog):
    from indexer.ingest.events import Change, ObjectEvent
    from indexer.ingest.sync import Sync
    from indexer.record import Record, Status

    uri = s3_uri("b", "photo.jpg")
    catalog.upsert_many([Record(uri=uri, status=Status.LABELED, bucket="b", key="photo.jpg")])
    removed = ObjectEvent(Change.REMOVED, SourceItem(uri, bucket="b", key="photo.jpg"))
    summary = Sync(settings, labeller, catalog, faulty).apply([removed])
    assert summary.removed == 1 and catalog.get(uri) is None
