"""Shards: disjoint, covering, stable, and taken from AWS Batch's array index."""

from __future__ import annotations

import pytest

from backfill.shard import Shard, ShardError

URIS = [f"s3://photos/{year}/img {i:05d}+é.jpg" for year in (2023, 2024) for i in range(1500)]


def test_shards_are_disjoint_cover_every_key_and_are_balanced():
    owners = {uri: [i for i in range(1, 5) if Shard(i, 4).owns(uri)] for uri in URIS}
    assert all(len(o) == 1 for o in owners.values())  # each key in exactly one shard
    sizes = [sum(1 for o in owners.values() if o == [i]) for i in range(1, 5)]
    assert min(sizes) > 0.8 * len(URIS) / 4, sizes


def test_the_split_is_stable_across_runs_and_machines():
    # a hash of the URI, not Python's salted hash(): these values must never change
    owners = [i for i in (1, 2, 3) if Shard(i, 3).owns("s3://photos/cat.jpg")]
    assert owners == [2]
    assert [i for i in range(1, 9) if Shard(i, 8).owns("s3://photos/2024/IMG_0001.JPG")] == [2]


def test_inventory_files_are_dealt_by_position():
    assert [p for p in range(7) if Shard(2, 3).owns_file(p)] == [1, 4]


@pytest.mark.parametrize(("text", "shard"), [("1/1", Shard()), ("3/8", Shard(3, 8)), (" 2 / 2 ", Shard(2, 2))])
def test_parse(text, shard):
    assert Shard.parse(text) == shard


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "2", "-1/3"])
def test_bad_shards_are_refused_with_the_input_named(text):
    with pytest.raises(ShardError, match="shard"):
        Shard.parse(text)


def test_from_aws_batch_array_environment():
    assert Shard.from_env({}) == Shard()
    assert Shard.from_env({"AWS_BATCH_JOB_ARRAY_INDEX": "0", "PIXDEX_SHARDS": "4"}) == Shard(1, 4)
    assert Shard.from_env({"AWS_BATCH_JOB_ARRAY_INDEX": "3", "PIXDEX_SHARDS": "4"}) == Shard(4, 4)
    with pytest.raises(ShardError, match="PIXDEX_SHARDS is not set"):
        Shard.from_env({"AWS_BATCH_JOB_ARRAY_INDEX": "2"})
    with pytest.raises(ShardError, match="need 1 <= I <= N"):
        Shard.from_env({"AWS_BATCH_JOB_ARRAY_INDEX": "4", "PIXDEX_SHARDS": "4"})
