"""A bounded fuzz pass (hypothesis) over what takes hostile input: the image decoder (random bytes,
and real photos with bytes changed, added or cut) and what reads a query's words. Every input is
decoded or refused with an ImageError, within the decode deadline; every word gives a label name
or a ValueError from the query's bounds. `make test` runs a few hundred inputs each; `make fuzz`
(PIXDEX_FUZZ_EXAMPLES) many more. The query parser too: anything typed reads or is refused."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.catalog import Query
from indexer.images import ImageError, decode
from indexer.model import vocabulary
from indexer.query_language import QueryError, parse
from indexer.settings import ImageLimits

EXAMPLES = int(os.environ.get("PIXDEX_FUZZ_EXAMPLES", "150"))
PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
SEEDS = [(PHOTOS / n).read_bytes() for n in ("coffee.jpg", "cat.png", "cameraman.jpg")]
LIMITS = ImageLimits(decode_seconds=2.0)
# the same inputs on every `make test` (a red suite is reproducible); fresh ones on every `make fuzz`
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="PIXDEX_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def decodes_or_refuses(data: bytes) -> None:
    started = time.monotonic()
    try:
        d = decode(data, LIMITS, preview=416)
    except ImageError as exc:
        assert exc.reason and str(exc)  # a reason for reports, a message for a person
    else:
        assert d.pixels.shape == (224, 224, 3) and d.width >= LIMITS.min_side and d.height >= LIMITS.min_side
    assert time.monotonic() - started < LIMITS.decode_seconds + 3  # the deadline, and what follows it


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    decodes_or_refuses(data)


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255), st.sampled_from("sid")),
                                        min_size=1, max_size=12))
def test_real_photos_with_bytes_changed_added_or_cut(seed, edits):
    data = bytearray(seed)
    for where, byte, how in edits:
        at = int(where * (len(data) - 1))
        if how == "s":
            data[at] = byte
        elif how == "i":
            data[at:at] = bytes([byte]) * (1 + byte % 64)
        else:
            del data[at:at + 1 + byte]
    decodes_or_refuses(bytes(data))


@FUZZ
@given(st.sampled_from(SEEDS), st.floats(0.0, 1.0))
def test_real_photos_cut_short(seed, keep):
    decodes_or_refuses(seed[:int(len(seed) * keep)])


@FUZZ
@given(st.lists(st.text(max_size=40), max_size=40))
def test_any_words_make_a_query_or_a_clear_refusal(words):
    resolved = vocabulary.imagenet().resolve_all(words)
    assert all(isinstance(w, str) and w == w.strip() and w for w in resolved)
    try:
        Query(all_of=resolved)
    except ValueError as exc:
        assert "at most" in str(exc)


QUERY_ATOMS = st.sampled_from(["cat", "cats", "OR", "or", "|", "NOT", "not", "-", '"', "the", "golden", "retriever",
                               "black and white", "min:", "min:50%", "label:", "text:", "espr*", "*", "sort:date",
                               "since:2026-01-01", "since:0001-01-01T00:00+01:00", "🐱", "\x00", "a:b"])


@FUZZ
@given(st.lists(st.one_of(QUERY_ATOMS, st.text(max_size=12)), max_size=30).map(" ".join))
def test_any_typed_query_reads_or_is_refused_and_reads_the_same_written_back(text):
    words = vocabulary.imagenet()
    try:
        parsed = parse(text, words)
    except QueryError:
        return
    assert parse(parsed.text(), words).query == parsed.query  # chips and the URL write it back
