"""indexer.query_language: what a person types into the search box reads into the query they meant,
and what cannot be run is refused with a message before it reaches a catalogue."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.catalog import Query, Sort
from indexer.model import vocabulary
from indexer.query_language import MAX_CHARS, Kind, QueryError, hint, parse, suggestions
from indexer.record import Status

WORDS = vocabulary.imagenet()


def read(text: str, **kw) -> Query:
    return parse(text, WORDS, **kw).query


@pytest.mark.parametrize(("typed", "all_of", "any_of", "none_of"), [
    ("cat", ("cat",), (), ()),
    ("Cats", ("cat",), (), ()),
    ("cats and dogs", ("cat", "dog"), (), ()),
    ("photos of golden retrievers", ("Golden Retriever",), (), ()),  # several words, no quotes
    ("butterflies", ("butterfly",), (), ()),
    ("cat OR dog", (), ("cat", "dog"), ()),
    ("cat | dog | lake", (), ("cat", "dog", "lake"), ()),
    ("cat|dog beach", ("beach",), ("cat", "dog"), ()),
    ("dog -beach", ("dog",), (), ("beach",)),
    ("dog NOT beaches", ("dog",), (), ("beach",)),
    ("black and white", ("black and white",), (), ()),
    ("monarch butterfly -black and white", ("monarch butterfly",), (), ("black and white",)),
    ('"Egyptian cat"', ("Egyptian cat",), (), ()),
    ("label:cat", ("cat",), (), ()),
    ("cat cats Cat", ("cat",), (), ()),  # one label, once
    ("lakeside", ("lakeshore",), (), ()),  # a WordNet synonym
    ("people -portrait", ("people",), (), ("portrait",)),
])
def test_words_read_into_labels(typed, all_of, any_of, none_of):
    q = read(typed)
    assert (q.all_of, q.any_of, q.none_of) == (all_of, any_of, none_of)


def test_quotes_read_a_label_exactly_where_a_bare_word_is_read_through_the_vocabulary():
    assert read('"cats"').all_of == ("cats",)  # not the plural of cat: exactly as typed
    assert read("cats").all_of == ("cat",)


def test_fields_set_the_rest_of_the_query():
    q = read("cat min:50% status:labeled source:file:///photos/ since:2026-01-01 until:2026-02-01 sort:date")
    assert q.min_confidence == 0.5 and q.status == Status.LABELED and q.source_prefix == "file:///photos/"
    assert (q.since, q.until) == (datetime(2026, 1, 1), datetime(2026, 2, 1))
    assert q.sort == Sort.DATE
    assert read("min:0.25").min_confidence == 0.25
    assert read("espr*").text == "espr" and read("text:espr").text == "espr"


def test_near_box_and_sort_by_date_taken():
    q = read("beach near:48.85,2.35,10km sort:taken")
    assert q.near == (48.85, 2.35, 10.0) and q.sort == Sort.TAKEN and q.all_of == ("beach",)
    assert read("near:48.85,2.35,500m").near == (48.85, 2.35, 0.5)  # metres
    assert read("near:-33.9,151.2,25").near == (-33.9, 151.2, 25.0)  # km without a unit
    assert read('near:"48.85, 2.35, 10 km"').near == (48.85, 2.35, 10.0)  # quoted, with spaces
    assert read("box:48.8,2.2,48.9,2.5").within == (48.8, 2.2, 48.9, 2.5)
    assert read("box:-20,170,-10,-170").within == (-20.0, 170.0, -10.0, -170.0)  # across the 180° meridian
    base = Query(near=(1.0, 2.0, 3.0), within=(0.0, 0.0, 1.0, 1.0))
    assert read("cat", base=base).near == (1.0, 2.0, 3.0) and read("box:5,5,6,6", base=base).within == (5, 5, 6, 6)
    parsed = parse("cat near:48.85,2.35,10km box:48,2,49,3 sort:taken", WORDS)
    assert parse(parsed.text(), WORDS).query == parsed.query
    assert parse(parsed.without_field("near"), WORDS).query.near is None


def test_sort_is_by_confidence_for_labels_and_newest_first_without():
    assert read("cat").sort == Sort.CONFIDENCE
    assert read("").sort == Sort.DATE
    assert read("-cat").sort == Sort.DATE  # nothing to rank by
    assert read("cat", sort=Sort.DATE).sort == Sort.DATE  # the caller's choice
    assert read("cat sort:confidence", sort=Sort.DATE).sort == Sort.CONFIDENCE  # the text's wins


def test_labels_add_to_the_base_query_and_fields_override_it():
    base = Query(all_of=("dog",), min_confidence=0.3, limit=7)
    q = read("cat min:0.6", base=base)
    assert q.all_of == ("dog", "cat") and q.min_confidence == 0.6 and q.limit == 7


def test_the_query_is_written_back_for_chips_and_reading_it_again_gives_the_same_query():
    parsed = parse("photos of Cats OR dogs -black and white min:50%", WORDS)
    assert parsed.text() == 'cat OR dog -"black and white" min:50%'
    assert parse(parsed.text(), WORDS).query == parsed.query
    assert parsed.without_term(0) == 'dog -"black and white" min:50%'
    assert parsed.without_field("min") == 'cat OR dog -"black and white"'
    assert [t.kind for t in parsed.terms] == [Kind.ANY, Kind.ANY, Kind.NOT]


@pytest.mark.parametrize(("typed", "message"), [
    ("cat OR dog sea OR lake", "one OR group"),
    ("OR cat", "OR needs a label on each side"),
    ("cat OR", "OR needs a label on each side"),
    ("-cat OR dog", "not excluded ones"),
    ("cat NOT", "NOT needs a label"),
    ("min:abc", "not a confidence"),
    ("min:150%", "between 0 and 100%"),
    ("status:great", "not a status"),
    ("since:yesterday", "not a date"),
    ("sort:random", "not a sort; sort:date, sort:confidence, sort:taken"),
    ("near:48.85,2.35", "near:48.85,2.35 is not a latitude, a longitude and a radius: write near:"),
    ("near:north,2.35,10km", "near:north,2.35,10km is not"), ("near:48.85,2.35,10mi", "is not a latitude"),
    ("near:48.85,2.35,infkm", "is not a latitude"), ("near:nan,2.35,1", "is not a latitude"),
    ("near:91,2.35,10km", "near:91,2.35,10km: latitude 91 is not between -90 and 90"),
    ("near:48.85,-181,10km", "longitude -181 is not between -180 and 180"),
    ("near:48.85,2.35,0km", "a radius of 0 km is not from 1 m"), ("near:48.85,2.35,1e-7", "is not from 1 m"),
    ("near:48.85,2.35,-1", "radius of -1 km"),
    ("near:48.85,2.35,40000km", "to 20,000 km"), ("near:", "needs a value, e.g. near:48.85,2.35,10km"),
    ("box:48.8,2.2,48.9", "box:48.8,2.2,48.9 is not south, west, north and east: write box:"),
    ("box:48.9,2.2,48.8,2.5", "box:48.9,2.2,48.8,2.5: south 48.9 is north of north 48.8"),
    ("box:-95,0,0,1", "latitude -95 is not between"), ("box:0,0,1,200", "longitude 200 is not between"),
    ("box:0,0,0,0", "has no area"), ("box:-15.5,170,-15.5,-170", "has no area"),
    ("taken:..", "neither a start nor an end"), ("taken:2020..2018", "ends before it starts"),
    ("taken:2019 taken:2020", "`taken:` is given twice .taken:2019, taken:2020.: a search takes one"),
    ("near:1,2,3 near:4,5,6", "`near:` is given twice"), ("has:date no:date", "has:date and no:date cannot"),
    ("no:date taken:2019", "no:date and taken:2019 cannot both hold"),
    ("-near:1,2,3", "cannot be negated"),
    ("flash:on", "no field `flash:`"),
    ('cat ""', "empty label"),
    ("min:", "needs a value"),
    ("a* b*", "one word prefix"),
    ("-espr*", "cannot be excluded"), ("NOT espr* cat", "cannot be excluded"), ("cat OR espr* dog", "OR-ed"),
    ("cat OR the", "OR needs a label after it"), ("cat OR 🐱", "OR needs a label after it"),
    # only symbols: no search for nothing (it would show every image as if it matched)
    ("🐱", "no label `🐱`"), ("!!! ?", r"no label `!!! \?`"), ("🐱*", "no label"), ("-", "no label `-`"),
    ("cat NOT OR dog", "NOT OR"), ("-the", "filler word"), ("text:***", "needs a value"),
    ("since:0001-01-01T00:00+01:00", "out of range"), ("until:9999-12-31T23:59-05:00", "out of range"),
    (" ".join(f"word{i}" for i in range(40)), "at most 32 labels, not 40"),
    ("x" * (MAX_CHARS + 1), f"at most {MAX_CHARS} characters"),
])
def test_what_cannot_run_is_refused_with_a_message(typed, message):
    with pytest.raises(QueryError, match=message) as caught:
        parse(typed, WORDS)
    assert caught.value.exit_code == 2 and caught.value.http_status == 400


def test_an_unknown_word_is_searched_as_typed_and_gets_a_did_you_mean():
    parsed = parse("buterfly beach", WORDS)
    assert parsed.query.all_of == ("buterfly", "beach") and parsed.unknown == ("buterfly",)
    assert hint(parsed, WORDS) == "no label `buterfly`; did you mean `butterfly`?"
    assert "butterfly" in suggestions("butter", WORDS)  # a word begun
    assert hint(parse("xyzzyq", WORDS), WORDS) == "no label `xyzzyq`, nor one like it"
    # a label of the catalogue's own (a reviewer's, your model's) is no mistake
    assert hint(parsed, WORDS, present=["Buterfly"]) is None
    assert suggestions("kat", WORDS, present=["cat", "dog"])[0] == "cat"  # what would find something first
    assert hint(parse("cat", WORDS), WORDS) is None


def test_filler_and_punctuation_read_as_nothing_and_leave_not_and_or_for_the_next_label():
    assert read("show me pictures of the beach ?").all_of == ("beach",)
    assert read("- & cat").all_of == ("cat",)
    for typed in ("sky NOT the beach", "sky NOT & beach", "sky NOT 🐶 beaches"):
        q = read(typed)
        assert (q.all_of, q.none_of) == (("sky",), ("beach",)), typed  # never an exclusion turned inclusion
    assert read("cat OR the dog").any_of == ("cat", "dog")
    assert read("MIN:0.5 Label:cat").min_confidence == 0.5 and read("Label:cat").all_of == ("cat",)


@pytest.mark.parametrize("typed", [
    "golden -beach retriever", "hot -beach dog", "black -cat white", 'text:"two words"', "cat OR dog -beach min:50%",
    '"golden" "retriever"', "monarch butterfly espr*", "people NOT group sort:date",
    'cat near:"48.85, 2.35, 10km" box:-20,170,-10,-170 sort:taken',
])
def test_written_back_it_reads_as_the_same_query(typed):
    parsed = parse(typed, WORDS)
    assert parse(parsed.text(), WORDS).query == parsed.query, parsed.text()
    for i in range(len(parsed.terms)):  # every chip's removal, too
        again = parse(parsed.without_term(i), WORDS).query
        assert len(again.all_of) + len(again.any_of) + len(again.none_of) == len(parsed.terms) - 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_reads_or_is_refused_never_crashes(text):
    try:
        parsed = parse(text, WORDS)
    except QueryError:
        return
    assert len(parsed.query.all_of) + len(parsed.query.any_of) + len(parsed.query.none_of) <= 32


def test_has_and_no_take_several_values():
    both = parse("no:location no:date", WORDS, Query(), None)
    assert both.query.has_location is False and both.query.has_date is False
    assert both.text() == "no:location,date"
    again = parse(both.text(), WORDS, Query(), None).query
    assert (again.has_location, again.has_date) == (False, False)
    mixed = parse("has:location no:date", WORDS, Query(), None).query
    assert (mixed.has_location, mixed.has_date) == (True, False)
    with pytest.raises(QueryError, match="no:colour is not one of"):
        parse("no:date,colour", WORDS, Query(), None)
    assert parse("has:date,date has:date", WORDS, Query(), None).query.has_date is True  # the same, thrice


def test_the_last_year_a_date_can_have_is_a_search_with_an_open_end():
    for typed in ("taken:9999", "taken:9999-12", "taken:9999-12-31"):
        query = parse(typed, WORDS, Query(), None).query
        assert query.taken_since.year == 9999 and query.taken_until is None
    same = parse("taken:2019 TAKEN:2019", WORDS, Query(), None).query  # the same field twice is the field
    assert same.taken_since.year == 2019
