"""The query language: what a person types into a search box, read into a `catalog.Query`.

One parser for the CLI (`pixdex search`), the API (`GET /search?q=`) and the app's search box;
GRAMMAR below is what `pixdex search --help` and the README show. A word the vocabulary does not
know is searched as typed (your own labels, labels a reviewer added) and listed in
`Parsed.unknown`, so that a caller can say "no label `xyz`; did you mean ...?" (`hint`). A query
longer than MAX_CHARS or with more labels than a search takes is refused with a `QueryError`
(HTTP 400, exit 2) before anything reaches a catalogue.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from indexer.catalog import Catalog, Query, Sort
from indexer.errors import UsageError
from indexer.model.vocabulary import Vocabulary, normalise
from indexer.record import Status

GRAMMAR = """\
The query language (the same in the app's search box, pixdex search and GET /search?q=):
  cat dog                both labels (words read through the vocabulary: cats, Cat, kitten, lakeside)
  golden retriever       a label of several words, no quotes needed
  cat OR dog, cat | dog  either (one OR group per search)
  -beach, NOT beach      without that label
  "black and white"      exactly that label (no plural, synonym or alias reading)
  espr*                  a label with a word that starts so (espresso, espresso maker)
  min:0.5, min:50%       the matched labels' minimum confidence
  label:X  status:failed  source:s3://bucket/photos/  since:2026-01-01  until:2026-02-01
  taken:2019, taken:2019-05, taken:2018..2020   camera:"Canon EOS 80D"   has:location   no:date
  near:48.85,2.35,10km   within 10 km (or 500m) of a latitude,longitude
  box:48.8,2.2,48.9,2.5  inside south,west,north,east (west > east: across the 180° meridian)
  sort:date, sort:confidence, sort:taken (default: confidence when labels are searched, else newest
                         indexed first; sort:taken is newest taken first, photos without a date last)
Words such as and, of, with, photos between labels mean nothing: "photos of cats and dogs" is cat dog.
A word that is no label gets "did you mean ...?"; at most 1000 characters and 32 labels."""

MAX_CHARS = 1000  # a search box's worth; a 10 kB query is refused before it is read
PRESENT_LABELS = 5000  # the catalogue's labels a hint looks among
MAX_PHRASE = 5  # words in the longest label read without quotes ("black and white", "golden retriever")
FILLER = frozenset({"a", "an", "the", "of", "with", "and", "in", "on", "at", "photo", "photos", "picture",
                    "pictures", "pic", "pics", "image", "images", "showing", "show", "me"})
FIELDS = ("label", "min", "status", "source", "since", "until", "sort", "text", "taken", "camera", "has", "no",
          "near", "box")
HAS = {"location": "has_location", "date": "has_date"}  # has:location, no:date
_TOKEN = re.compile(r"""\s*(?:
    (?P<neg>-(?=\S))?              # -word: without it
    (?:(?P<field>[A-Za-z_]+):)?     # min:0.5, label:"..." (any case: MIN:0.5)
    (?:"(?P<quoted>[^"]*)"?         # "black and white" (an unclosed quote runs to the end)
      |(?P<word>\||[^\s"|]+)))     # a word, or | (OR)
""", re.VERBOSE)


class QueryError(UsageError):
    """A query that cannot be read or run as typed; the message says what to change."""


class Kind(StrEnum):
    ALL = "all"  # the image must have it
    ANY = "any"  # one of the OR group
    NOT = "not"  # the image must not have it


@dataclass(frozen=True)
class Term:
    """One label of the query, as typed and as read. `known`: the vocabulary has the label (a
    word it does not know is searched as typed)."""

    kind: Kind
    typed: str
    label: str
    known: bool = True
    exact: bool = False  # quoted or label:, so read as it is

    def text(self) -> str:
        """The term written back, so that reading it again gives the same term."""
        label = f'"{self.label}"' if self.exact or " " in self.label or '"' in self.typed else self.label
        return f"-{label}" if self.kind == Kind.NOT else label


@dataclass(frozen=True)
class Parsed:
    """A query read: the `Query` to run and what it was read from, for chips and hints."""

    query: Query
    terms: tuple[Term, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()  # (name, value) as typed, e.g. ("min", "50%")
    prefix: str | None = None  # `espr*`
    vocabulary: Vocabulary | None = field(default=None, compare=False, repr=False)  # to write it back

    @property
    def unknown(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.label for t in self.terms if not t.known))

    def text(self) -> str:
        """The whole query written back canonically (labels as read), e.g. `cat OR dog -beach`."""
        return self._write(self.terms, self.fields, self.prefix)

    def without_term(self, index: int) -> str:
        """The query text with one label removed (a chip's close button)."""
        return self._write(self.terms[:index] + self.terms[index + 1:], self.fields, self.prefix)

    def replacing(self, index: int, label: str) -> str:
        """The query text with one label replaced (a did-you-mean clicked)."""
        term = replace(self.terms[index], label=label, typed=label, known=True, exact=True)
        return self._write((*self.terms[:index], term, *self.terms[index + 1:]), self.fields, self.prefix)

    def adding(self, label: str) -> str:
        """The query text with one more label (a facet clicked)."""
        return self._write((*self.terms, Term(Kind.ALL, label, label, exact=True)), self.fields, self.prefix)

    def without_field(self, name: str) -> str:
        return self._write(self.terms, tuple(f for f in self.fields if f[0] != name), self.prefix)

    def _write(self, terms: tuple[Term, ...], fields: tuple[tuple[str, str], ...], prefix: str | None) -> str:
        words = [t.text() for t in terms if t.kind == Kind.ALL]
        for n, t in enumerate(t for t in terms if t.kind == Kind.ANY):
            words += [t.text()] if n == 0 else ["OR", t.text()]
        words += [t.text() for t in terms if t.kind == Kind.NOT]
        if self.vocabulary is not None:
            words = _kept_apart(words, self.vocabulary)
        if prefix:
            plain = re.fullmatch(r"[^\s\"\-:|*][^\s\":|*]*", prefix) is not None  # reads back as itself
            words.append(f"{prefix}*" if plain else f'text:"{prefix}"')
        words += [f'{name}:"{value}"' if " " in value else f"{name}:{value}" for name, value in fields]
        return " ".join(words)


def _kept_apart(words: list[str], vocabulary: Vocabulary) -> list[str]:
    """Quote bare words that, written side by side, would read as one label of several words
    (`golden` and `retriever` from `golden -beach retriever` are two labels, not Golden Retriever)."""
    out = list(words)
    bare = [bool(re.fullmatch(r'[^\s"-][^\s"]*', w)) and w != "OR" for w in out]
    for i in range(len(out)):
        for j in range(i + 1, min(i + MAX_PHRASE, len(out))):
            if not all(bare[i:j + 1]):
                break
            if _known(" ".join(words[i:j + 1]), vocabulary) is not None:
                for k in range(i, j + 1):
                    out[k] = f'"{words[k]}"'
    return out


@dataclass
class _Token:
    word: str
    negated: bool = False
    field: str | None = None
    quoted: bool = False
    operator: str | None = None  # "OR" or "NOT"


@dataclass
class _Reading:
    terms: list[Term] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    prefix: str | None = None


def parse(text: str, vocabulary: Vocabulary, base: Query | None = None, sort: Sort | None = None) -> Parsed:
    """Read `text` into a Query over `base` (what other controls chose: a limit, filters, labels
    from flags): its labels are added to base's, and its fields win over base's. The sort: the
    text's `sort:`, else `sort`, else by confidence when labels are searched and newest first when not."""
    base = base or Query()
    if len(text) > MAX_CHARS:
        raise QueryError(f"a search takes at most {MAX_CHARS} characters, not {len(text)}: shorten it")
    reading = _Reading()
    tokens = _tokens(text)
    stray: list[str] = []  # what reads as nothing
    pending: Kind | None = None  # NOT or OR before the next label
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.operator == "NOT":
            pending = Kind.NOT
            i += 1
            continue
        if tok.operator == "OR":
            if pending:
                raise QueryError(f"{pending_word(pending)} OR: write `cat OR dog`, or `-cat` to exclude")
            _join_group(reading.terms, tokens, i)
            pending = Kind.ANY
            i += 1
            continue
        if tok.field is not None and tok.field != "label":
            if pending:
                raise QueryError(f"{pending_word(pending)} needs a label after it, not the field `{tok.field}:`")
            _field(reading, tok)
            i += 1
            continue
        if not (tok.field == "label" or tok.quoted) and not any(c.isalnum() for c in tok.word):
            stray.append(tok.word)
            i += 1  # a stray "-", "&", "?" or emoji reads as nothing (and leaves a NOT or OR for the next label)
            continue
        if tok.word.endswith("*") and not tok.quoted and tok.field is None:
            if tok.negated or pending:
                raise QueryError(f"a word prefix (`{tok.word}`) cannot be excluded or OR-ed: write the labels")
            if reading.prefix is not None:
                raise QueryError(f"a search takes one word prefix (`{reading.prefix}*`), not also `{tok.word}`")
            reading.prefix = tok.word.rstrip("*")
            i += 1
            continue
        if tok.field == "label" or tok.quoted:
            if not tok.word.strip():
                raise QueryError('an empty label (`""` or `label:`) finds nothing: put a label between the quotes')
            kind = Kind.NOT if tok.negated else pending or Kind.ALL
            pending = None
            reading.terms.append(Term(kind, tok.word, _exact(tok.word, vocabulary), exact=True))
            i += 1
            continue
        length, label = _longest_label(tokens, i, vocabulary)
        typed = " ".join(t.word for t in tokens[i:i + length])
        if label is None and normalise(typed) in FILLER:
            if tok.negated:
                raise QueryError(f"-{typed} excludes nothing: `{typed}` is a filler word, not a label")
            i += 1  # "NOT the beach": the NOT waits for the label
            continue
        kind = Kind.NOT if tok.negated else pending or Kind.ALL
        pending = None
        reading.terms.append(Term(kind, typed, label or typed, label is not None))
        i += length
    if pending:
        raise QueryError(f"{pending_word(pending)} needs a label after it: `cat NOT dog`, `cat OR dog`")
    if stray and not (reading.terms or reading.fields or reading.prefix is not None):
        # only symbols: searching for nothing would show every image as if it matched
        raise QueryError(f"no label `{' '.join(stray)}`: a search is words (cat, beach, \"black and white\")")
    return _build(reading, base, sort, vocabulary)


def pending_word(kind: Kind) -> str:
    return "NOT" if kind == Kind.NOT else "OR"


def _tokens(text: str) -> list[_Token]:
    out = []
    for m in _TOKEN.finditer(text):
        if m.group("quoted") is not None:
            out.append(_Token(m.group("quoted"), bool(m.group("neg")), (m.group("field") or "").lower() or None,
                              quoted=True))
            continue
        word, name = m.group("word"), (m.group("field") or "").lower() or None
        if word is None:
            continue
        if name is None and re.fullmatch(r"[A-Za-z_]+:", word):  # `min:` with nothing after it
            word, name = "", word[:-1].lower()
        if not m.group("neg") and not name and word in ("OR", "|", "or"):
            out.append(_Token(word, operator="OR"))
        elif not m.group("neg") and not name and word in ("NOT", "not"):
            out.append(_Token(word, operator="NOT"))
        elif name and name not in FIELDS:
            raise QueryError(f"no field `{name}:` in a search; the fields are "
                             + ", ".join(f"{f}:" for f in FIELDS))
        else:
            out.append(_Token(word, bool(m.group("neg")), name))
    return out


def _join_group(terms: list[Term], tokens: list[_Token], at: int) -> None:
    """`a OR b`: the label before OR goes into the OR group; the parser puts the one after it there."""
    if not terms or at + 1 >= len(tokens) or tokens[at + 1].operator or tokens[at + 1].negated:
        raise QueryError("OR needs a label on each side: `cat OR dog`")
    last = terms[-1]
    if last.kind == Kind.NOT:
        raise QueryError("OR joins labels to look for, not excluded ones: write `-cat -dog`")
    if last.kind == Kind.ALL and any(t.kind == Kind.ANY for t in terms):
        raise QueryError("a search takes one OR group: `cat OR dog beach` works, `cat OR dog sea OR lake` does not")
    terms[-1] = replace(last, kind=Kind.ANY)


def _build(reading: _Reading, base: Query, sort: Sort | None, vocabulary: Vocabulary) -> Parsed:
    fields = reading.fields
    try:
        sort = Sort(fields["sort"]) if "sort" in fields else sort
    except ValueError:
        raise QueryError(f"sort:{fields['sort']} is not a sort; " + ", ".join(f"sort:{s}" for s in Sort)) from None
    terms = tuple({(t.kind, t.label.casefold()): t for t in reading.terms}.values())  # `cat cats`: one chip
    if sum(t.kind == Kind.ANY for t in terms) == 1:  # `cat OR cat`: an OR of one is that label
        terms = tuple(replace(t, kind=Kind.ALL) if t.kind == Kind.ANY else t for t in terms)
    labelled = bool(base.all_of or base.any_of or base.text or reading.prefix is not None
                    or any(t.kind != Kind.NOT for t in terms))
    by_kind = {k: tuple(t.label for t in terms if t.kind == k) for k in Kind}
    try:
        query = replace(
            base, all_of=_union(base.all_of, by_kind[Kind.ALL]), any_of=_union(base.any_of, by_kind[Kind.ANY]),
            none_of=_union(base.none_of, by_kind[Kind.NOT]),
            text=reading.prefix if reading.prefix is not None else base.text,
            min_confidence=_confidence(fields["min"]) if "min" in fields else base.min_confidence,
            **_taken(fields.get("taken"), base), camera=fields.get("camera", base.camera), **_has(fields, base),
            near=_near(fields["near"]) if "near" in fields else base.near,
            within=_box(fields["box"]) if "box" in fields else base.within,
            status=_status(fields["status"]) if "status" in fields else base.status,
            source_prefix=fields.get("source", base.source_prefix),
            since=_date("since", fields["since"]) if "since" in fields else base.since,
            until=_date("until", fields["until"]) if "until" in fields else base.until,
            sort=sort or (Sort.CONFIDENCE if labelled else Sort.DATE))
    except ValueError as exc:  # the Query's own bounds: labels, text length, dates
        advice = "; remove some labels" if "labels" in str(exc) else ""
        raise QueryError(f"{exc}{advice}") from None
    if query.has_date is False and (query.taken_since or query.taken_until):
        raise QueryError(f"no:date and taken:{fields.get('taken', '')} cannot both hold: keep one")
    return Parsed(query, terms, tuple(fields.items()), reading.prefix, vocabulary)


def _taken(value: str | None, base: Query) -> dict[str, datetime | None]:
    """taken:2019, taken:2019-05, taken:2019-05-03, taken:2019..2021 (both ends included), as a range."""
    if value is None:
        return {"taken_since": base.taken_since, "taken_until": base.taken_until}
    first, dots, last = value.partition("..")
    if not dots:
        since, until = _period(first, value)
    elif not first and not last:
        raise QueryError(f"taken:{value} has neither a start nor an end: write taken:2018..2020, taken:2018.. "
                         "or taken:..2020 (has:date: any date)")
    else:
        since, until = _period(first, value)[0] if first else None, _period(last, value)[1] if last else None
        if since is not None and until is not None and since >= until:
            raise QueryError(f"taken:{value} ends before it starts: write the earlier date first")
    return {"taken_since": since, "taken_until": until}


def _period(text: str, value: str) -> tuple[datetime, datetime | None]:
    """A year, a month or a day: its first instant and the first instant after it (UTC; none after
    the last day of year 9999)."""
    parts = text.split("-")
    try:
        numbers = [int(p) for p in parts]
        if len(numbers) == 1 and len(parts[0]) == 4:
            start = datetime(numbers[0], 1, 1, tzinfo=UTC)
            return start, _after(lambda: datetime(numbers[0] + 1, 1, 1, tzinfo=UTC))
        if len(numbers) == 2:
            y, m = numbers
            return datetime(y, m, 1, tzinfo=UTC), _after(lambda: datetime(y + m // 12, m % 12 + 1, 1, tzinfo=UTC))
        if len(numbers) == 3:
            day = datetime(*numbers, tzinfo=UTC)
            return day, _after(lambda: day + timedelta(days=1))
    except (ValueError, OverflowError):
        pass
    raise QueryError(f"taken:{value} is not a year, month or day: write taken:2019, taken:2019-05, "
                     "taken:2019-05-03 or taken:2018..2020")


def _after(end: Callable[[], datetime]) -> datetime | None:
    """The first instant after a period, or None where that is past year 9999 (an open end)."""
    try:
        return end()
    except (ValueError, OverflowError):
        return None


def _near(value: str) -> tuple[float, float, float]:
    """near:LAT,LON,RADIUS, the radius in km (10km, 10) or m (500m)."""
    *position, radius = [p.strip() for p in value.split(",")]
    scale = 0.001 if radius.lower().endswith("m") and not radius.lower().endswith("km") else 1.0
    numbers = _numbers("near", value, [*position, radius.lower().removesuffix("km").removesuffix("m")], 3,
                       "a latitude, a longitude and a radius")
    near = (numbers[0], numbers[1], numbers[2] * scale)
    _in_range("near", value, near=near)
    return near


def _box(value: str) -> tuple[float, float, float, float]:
    """box:SOUTH,WEST,NORTH,EAST in degrees."""
    south, west, north, east = _numbers("box", value, [p.strip() for p in value.split(",")], 4,
                                        "south, west, north and east")
    _in_range("box", value, within=(south, west, north, east))
    return south, west, north, east


def _numbers(name: str, value: str, parts: list[str], count: int, form: str) -> list[float]:
    """`count` finite numbers, else a QueryError naming what was typed and showing the form."""
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != count or not all(math.isfinite(x) for x in numbers):
        raise QueryError(f"{name}:{value} is not {form}: write {_EXAMPLES[name]}")
    return numbers


def _in_range(name: str, value: str, **geo: tuple[float, ...]) -> None:
    """The Query's own bounds (latitudes, longitudes, radius), in a message naming what was typed."""
    try:
        Query(**geo)
    except ValueError as exc:
        raise QueryError(f"{name}:{value}: {str(exc).partition(': ')[2]}") from None


def _has(fields: dict[str, str], base: Query) -> dict[str, bool | None]:
    out = {attr: getattr(base, attr) for attr in HAS.values()}
    typed: dict[str, str] = {}
    for name, wanted in (("has", True), ("no", False)):
        for value in fields.get(name, "").split(",") if name in fields else ():
            key = value.strip().lower()
            attr = HAS.get(key)
            if attr is None:
                raise QueryError(f"{name}:{value} is not one of " + ", ".join(f"{name}:{h}" for h in HAS))
            if typed.get(attr, name) != name:
                raise QueryError(f"has:{key} and no:{key} cannot both hold: keep one")
            typed[attr] = name
            out[attr] = wanted
    return out


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple({n.casefold(): n for n in (*a, *b)}.values())


def _field(reading: _Reading, tok: _Token) -> None:
    name, value = tok.field, tok.word.strip()
    if not value:
        raise QueryError(f"`{name}:` needs a value, e.g. {_EXAMPLES[name]}")
    if tok.negated:
        raise QueryError(f"`-{name}:` cannot be negated")
    if name == "text":
        if not value.strip("*"):
            raise QueryError(f"`{name}:` needs a value, e.g. {_EXAMPLES[name]}")
        if reading.prefix is not None:
            raise QueryError(f"a search takes one word prefix (`{reading.prefix}*`), not also `text:{value}`")
        reading.prefix = value.rstrip("*")
        return
    if name in ("has", "no") and name in reading.fields:  # no:location no:date: both, as no:location,date
        value = ",".join({v.lower(): v for v in (*reading.fields[name].split(","), value)}.values())
    elif name in reading.fields and reading.fields[name].casefold() != value.casefold():
        raise QueryError(f"`{name}:` is given twice ({name}:{reading.fields[name]}, {name}:{value}): a search "
                         "takes one")
    reading.fields[name] = value


_EXAMPLES = {"taken": "taken:2019 or taken:2019-05", "camera": 'camera:"Canon EOS 80D"',
             "has": "has:location", "no": "no:date",
             "near": "near:48.85,2.35,10km (latitude, longitude, radius)",
             "box": "box:48.8,2.2,48.9,2.5 (south, west, north, east)",
             "min": "min:0.5 or min:50%", "status": "status:failed", "source": "source:s3://bucket/photos/",
             "since": "since:2026-01-31", "until": "until:2026-02-01", "sort": "sort:date", "text": "text:espr",
             "label": 'label:"black and white"'}


def _confidence(value: str) -> float:
    number = value.removesuffix("%")
    try:
        x = float(number)
    except ValueError:
        raise QueryError(f"min:{value} is not a confidence; write min:0.5 or min:50%") from None
    x = x / 100 if value.endswith("%") or x > 1 else x
    if not 0.0 <= x <= 1.0:
        raise QueryError(f"min:{value} is not a confidence between 0 and 100%")
    return x


def _status(value: str) -> Status:
    try:
        return Status(value.upper())
    except ValueError:
        raise QueryError(f"status:{value} is not a status; one of "
                         + ", ".join(s.value.lower() for s in Status)) from None


def _date(name: str, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{name}:{value} is not a date; write {_EXAMPLES[name]}") from None


def _exact(word: str, vocabulary: Vocabulary) -> str:
    """A quoted label: as it is spelled in the vocabulary when it is one (any case), else as typed."""
    return vocabulary.labels.get(normalise(word), " ".join(word.split()))


def _longest_label(tokens: list[_Token], at: int, vocabulary: Vocabulary) -> tuple[int, str | None]:
    """The most words from `at` on that read as one label ("golden retriever"), else one word."""
    end = at
    while end < len(tokens) and end - at < MAX_PHRASE and _plain(tokens[end], first=end == at):
        end += 1
    for stop in range(end, at, -1):
        words = " ".join(t.word for t in tokens[at:stop])
        label = _known(words, vocabulary)
        if label is not None:
            return stop - at, label
    return 1, None


def _plain(tok: _Token, first: bool) -> bool:
    """Whether a token can be part of a label of several words read without quotes."""
    return (not tok.operator and tok.field is None and not tok.quoted and not tok.word.endswith("*")
            and (first or not tok.negated))


def _known(words: str, vocabulary: Vocabulary) -> str | None:
    label = vocabulary.resolve(words)
    return label if normalise(label) in vocabulary.labels else None


# -- hints ----------------------------------------------------------------------------------------

def suggestions(word: str, vocabulary: Vocabulary, present: Collection[str] = (), n: int = 3) -> list[str]:
    """Words a mistyped or unknown word may mean: labels and aliases it begins (`butter` ->
    butterfly) or is spelled close to (`buterfly` -> butterfly), those `present` (the catalogue's
    labels: a suggestion that finds something) first, then the closest."""
    key = normalise(word)
    if not key:
        return []
    names = {k: vocabulary.labels.get(k, k) for k in vocabulary.words} | {normalise(p): p for p in present}
    have = {normalise(p) for p in present}
    # one letter wrong in a short word ("kat") is a ratio of 0.67; in a longer one, above 0.75
    close = difflib.get_close_matches(key, names, n=2 * n, cutoff=0.6 if len(key) <= 4 else 0.75)
    starts = sorted((k for k in names if k.startswith(key) and k != key), key=len)[:2 * n]

    def score(k: str) -> tuple[bool, float]:
        return k not in have, -(difflib.SequenceMatcher(None, key, k).ratio() + (0.2 if k.startswith(key) else 0))

    ranked = sorted(dict.fromkeys(k for k in [*close, *starts] if k != key), key=score)
    by_meaning = {}  # one word per label: `mountain`, not also `mountains`
    for k in ranked:
        by_meaning.setdefault(vocabulary.words.get(k, names[k]), names[k])
    return list(by_meaning.values())[:n]


def misses(parsed: Parsed, vocabulary: Vocabulary, present: Collection[str] = ()) -> list[tuple[int, str, list[str]]]:
    """(term index, word, the labels it may mean) for each word, once, that is neither in the
    vocabulary nor among the catalogue's labels (`present`: your own model's, a reviewer's)."""
    have = {normalise(p) for p in present}
    out: dict[str, tuple[int, str, list[str]]] = {}
    for i, term in enumerate(parsed.terms):
        if not term.known and normalise(term.label) not in have and term.label not in out:
            out[term.label] = (i, term.label, suggestions(term.label, vocabulary, present))
    return list(out.values())


def hint(parsed: Parsed, vocabulary: Vocabulary, present: Collection[str] = ()) -> str | None:
    """"no label `xyz`; did you mean ...?" for each of `misses`, else None."""
    lines = [f"no label `{word}`; did you mean " + " or ".join(f"`{o}`" for o in options) + "?"
             if options else f"no label `{word}`, nor one like it"
             for _, word, options in misses(parsed, vocabulary, present)]
    return "; ".join(lines) or None


def hint_in(parsed: Parsed, vocabulary: Vocabulary, catalog: Catalog) -> str | None:
    """`hint` against the catalogue's own labels (asked for only when a word is unknown)."""
    if not parsed.unknown:
        return None
    return hint(parsed, vocabulary, [name for name, _ in catalog.facets(Query(), size=PRESENT_LABELS)])
