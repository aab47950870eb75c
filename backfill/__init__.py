"""The backfill: label every image already in a bucket, a folder or a list of URIs, fast,
resumably, and sharded across an AWS Batch array job. Built on `indexer`'s pipeline functions.

Module by module, the path of one key: `sources` lists it (a bucket listing, an `inventory`
report, a folder, a URI file), `shard` says whether it is this worker's, `stages` skip-check,
fetch, decode, label and write it, `runner` wires the stages with bounded queues, `report`
counts what happened, `cli` is `pixdex backfill`.
"""
