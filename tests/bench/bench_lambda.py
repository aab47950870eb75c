"""Cold start and warm latency of the indexer Lambda handler, on 12-megapixel JPEGs (CPU).

A fresh Python process plays a new Lambda container: it imports `indexer.aws.handler`, builds the model
and clients, and handles its first SQS-shaped event (one S3 upload); then, warm, it handles N more,
one per invocation, as Lambda's SQS event source with batch size 1 would. S3 is moto's server on
localhost; the catalogue is a fresh SQLite file. Goals on this machine: cold start <= 2 s (the AWS
tutorial this replaces reports 48.7 s for a TensorFlow model on Lambda), warm p50 <= 25 ms per event
(the issue's goal for a 12-MP image; README "Benchmarks" says where the time goes).
Benchmarks print; they never assert.

Run:  make bench   or   .venv/bin/python tests/bench/bench_lambda.py --n 30
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def notification(bucket: str, key: str, size: int) -> dict:
    from urllib.parse import quote_plus

    body = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "bench", "bucket": {"name": bucket},
               "object": {"key": quote_plus(key), "size": size}},
    }]}
    return {"Records": [{
        "messageId": f"m-{key}", "receiptHandle": "r", "body": json.dumps(body), "attributes": {},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench", "awsRegion": "us-east-1",
    }]}


def child(events_file: str) -> None:
    """The fresh container: timings relative to its own first line, one JSON line on stdout."""
    t0 = time.perf_counter()
    from indexer.aws.handler import default_sync, handle  # the function's module, as Lambda loads it

    t_import = time.perf_counter()
    sync = default_sync()  # model, S3 client, catalogue
    t_build = time.perf_counter()
    events = json.loads(Path(events_file).read_text())
    result = handle(events[0], sync)
    t_first = time.perf_counter()
    assert result == {"batchItemFailures": []}, result
    warm = []
    for event in events[1:]:
        t = time.perf_counter()
        handle(event, sync)
        warm.append(time.perf_counter() - t)
    print(json.dumps({"imports": t_import - t0, "build": t_build - t_import, "first_event": t_first - t_build,
                      "warm": warm}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30, help="warm events after the first (default 30)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)

    import logging

    import boto3
    # here, not at the top: the child plays a fresh container and must import only what Lambda does
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_index import make_corpus  # the same 12 MP corpus as the throughput bench
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}",
           "PIXDEX_DEVICE": "cpu", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    corpus = sorted(make_corpus(max(args.n + 1, 16)).glob("*.jpg"))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bench")
    events = []
    for i in range(args.n + 1):
        data = corpus[i % len(corpus)].read_bytes()
        key = f"uploads/photo {i:03d}.jpg"
        s3.put_object(Bucket="bench", Key=key, Body=data)
        events.append(notification("bench", key, len(data)))
    mb = statistics.mean(p.stat().st_size for p in corpus) / 1e6

    with tempfile.TemporaryDirectory() as tmp:
        events_file = Path(tmp) / "events.json"
        events_file.write_text(json.dumps(events))
        env["PIXDEX_CATALOG"] = f"sqlite:///{tmp}/bench.db"
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(events_file)], env=env,
                                stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        total = time.perf_counter() - started
        proc.wait()
    server.stop()
    r = json.loads(line)
    warm = sorted(r["warm"])
    cold = total - sum(warm)  # spawn -> first event handled (the warm events ran after it)
    p50 = statistics.median(warm)
    p95 = warm[min(len(warm) - 1, round(0.95 * (len(warm) - 1)))]
    print(f"indexer Lambda handler, 12 MP JPEGs ({mb:.1f} MB average), S3 = moto on localhost, "
          f"{os.cpu_count()} CPU cores, torch threads default")
    print(f"  cold start, spawn -> first event done : {cold * 1000:7.0f} ms   (goal <= 2000 ms; "
          f"ratio to goal {cold / 2:.2f})")
    print(f"    interpreter + imports                : {(cold - r['build'] - r['first_event']) * 1000:7.0f} ms")
    print(f"    model + clients                      : {r['build'] * 1000:7.0f} ms")
    print(f"    first event                          : {r['first_event'] * 1000:7.0f} ms")
    print(f"  warm, per event ({len(warm)} events)            : p50 {p50 * 1000:5.0f} ms   "
          f"p95 {p95 * 1000:5.0f} ms   (goal p50 <= 25 ms; p50 ratio to goal {p50 / 0.025:.2f})")


if __name__ == "__main__":
    main()
