"""indexer.s3 against moto's S3 server: reads, heads, listings and the three ways a read fails."""

from __future__ import annotations

import pytest

from indexer.images import ImageError
from indexer.s3 import S3Source, s3_uri, split_s3_uri
from indexer.settings import ImageLimits
from indexer.source import ObjectMissing, ReadError, SourceItem, SourceUnavailable


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
    with pytest.raises(ImageError, match="too large"):
        small.read(SourceItem(uri=s3_uri(bucket.name, "absent.png"), size=5000))  # from the event: no GET


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
