"""The production catalogue: OpenSearch (self-managed or Amazon OpenSearch Service), opensearch-py.

Layout: an index template (settings + mapping, versioned by MAPPING_VERSION) for indices named
`<alias>-v<N>-<timestamp>`; one such concrete index behind the alias every query uses, so
`reindex()` can build a new one and swap the alias atomically; and `<alias>-tombstones`, the
sequencers of deleted keys (see Catalog), which no query reads.

Labels are `nested` docs. Besides the record's own labels, a parent concept that is no label
itself gets an `inherited` doc with its best child's confidence (`label_rows_of`), so label
filters, a minimum confidence on the matched label, facets and the confidence sort answer exactly
as the SQLite backend does. Names match case-insensitively through a lowercase normalizer. The
record's other fields are mapped, and written to documents, as catalog/fields.py decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, RequestsHttpConnection, helpers
from opensearchpy.exceptions import ConnectionError as ConnectionFailed
from opensearchpy.exceptions import OpenSearchException, TransportError

from indexer.catalog.base import (
    COUNT_FIELDS,
    TOMBSTONE_RETENTION,
    Catalog,
    CatalogError,
    Cursor,
    DayCount,
    Page,
    Query,
    Sort,
    can_name_a_record,
    chunks,
    is_newer,
    kept_review,
    label_rows_of,
    utc_iso,
)
from indexer.catalog.fields import decode, encode, opensearch_properties
from indexer.errors import CatalogUnavailable
from indexer.record import Label, Record, Source, Status, embedding_model, record_id, utcnow
from indexer.settings import OpenSearchSettings

# 2: faces, face_count; 3: what photos say (taken_at, camera, ..., location); 4: content_hash; in place
MAPPING_VERSION = 4
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ATTEMPTS = 8  # rounds of a conditional write before it gives up (each lost round: another writer won)
MAX_CHUNK_BYTES = 9 * 1024 * 1024  # under the 10 MiB request limit of the smallest Amazon OpenSearch instances
NO_VALUE = -2 ** 63  # the sort value of a document without the field (missing: _last, descending): Long.MIN_VALUE
LC = {"type": "keyword", "normalizer": "lowercase"}
# since MAPPING_VERSION 1: put into an older index when it is opened (new fields only: no reindex)
ADDED_FIELDS = ("faces", "face_count", "taken_at", "camera", "lens", "focal_length", "exposure_time", "f_number",
                "iso", "latitude", "longitude", "altitude", "location", "content_hash")


def index_body(embedding_dim: int) -> dict[str, Any]:
    """Settings and mapping of the images index (MAPPING_VERSION): fields as ARCHITECTURE.md's record."""
    keyword = {"type": "keyword"}
    name = {"type": "keyword", "fields": {"lc": LC, "words": {"type": "text"}}}
    return {
        "settings": {
            "index": {"knn": True, "number_of_shards": 1},
            "analysis": {"normalizer": {"lowercase": {"type": "custom", "filter": ["lowercase"]}}},
        },
        "mappings": {
            "dynamic": "strict",
            "_meta": {"pixdex_mapping_version": MAPPING_VERSION},
            "properties": {
                **opensearch_properties(),  # the record's fields (catalog/fields.py); then what this index adds
                "indexed_us": {"type": "long"},  # microseconds: the sort key (dates keep milliseconds only)
                "top_confidence": {"type": "float"},
                "labels": {"type": "nested", "properties": {
                    "name": name, "confidence": {"type": "float"}, "source": keyword, "parents": keyword,
                    "inherited": {"type": "boolean"},
                }},
                "label_names": name,
                "faces": {"type": "object", "enabled": False},  # boxes for the app: kept, not indexed
                "face_count": {"type": "integer"},
                "location": {"type": "geo_point"},  # latitude and longitude, for the map and radius filters
                "embedding": {"type": "knn_vector", "dimension": embedding_dim,
                              "method": {"name": "hnsw", "space_type": "cosinesimil", "engine": "lucene"}},
            },
        },
    }


TOMBSTONES_BODY = {"mappings": {"dynamic": "strict", "properties": {
    "sequencer": {"type": "keyword"}, "deleted_at": {"type": "date"}}}}


def connect(url: str, options: OpenSearchSettings) -> OpenSearch:
    """A client for `url`: basic auth, TLS verified against a CA bundle, or AWS SigV4 (es | aoss)."""
    kwargs: dict[str, Any] = dict(hosts=[url], use_ssl=url.startswith("https://"), verify_certs=options.verify_certs,
                                  ca_certs=str(options.ca_bundle) if options.ca_bundle else None,
                                  connection_class=RequestsHttpConnection, timeout=30, max_retries=3,
                                  retry_on_timeout=True, retry_on_status=(502, 503, 504))
    if options.aws_service:
        import boto3
        from opensearchpy import RequestsAWSV4SignerAuth

        session = boto3.session.Session()
        credentials = session.get_credentials()
        region = options.aws_region or session.region_name
        if credentials is None or region is None:
            raise CatalogError("PIXDEX_OPENSEARCH__AWS_SERVICE is set but no AWS credentials or region were found")
        kwargs["http_auth"] = RequestsAWSV4SignerAuth(credentials, region, options.aws_service)
    elif options.basic_auth():
        kwargs["http_auth"] = options.basic_auth()
    return OpenSearch(**kwargs)


def similar_body(target: Record, k: int) -> dict[str, Any]:
    """The `knn` query (documented shape: field -> vector, k, filter) for the k nearest images by the
    same model, the image itself excluded."""
    model = embedding_model(target.model_id)  # the classifier's weights: the embedding's space
    same_model = ({"bool": {"should": [{"term": {"model_id": model}}, {"prefix": {"model_id": f"{model}+"}}],
                            "minimum_should_match": 1}} if model
                  else {"bool": {"must_not": {"exists": {"field": "model_id"}}}})
    return {
        "size": k,
        "_source": {"excludes": ["embedding"]},
        "query": {"knn": {"embedding": {
            "vector": [float(x) for x in target.embedding],
            "k": k + 1,
            "filter": {"bool": {"filter": [same_model], "must_not": [{"ids": {"values": [target.id]}}]}},
        }}},
    }


class OpenSearchCatalog(Catalog):
    def __init__(self, client: OpenSearch, alias: str, embedding_dim: int = 1280,
                 refresh: str | bool = "wait_for", create: bool = True) -> None:
        self.client = client
        self.alias = alias
        self.tombstones = f"{alias}-tombstones"
        self.embedding_dim = embedding_dim
        self.refresh = refresh  # "wait_for": a write is searchable when it returns; False for bulk backfills
        with self._errors("prepare the index"):
            self._ensure(create)

    @classmethod
    def from_url(cls, url: str, options: OpenSearchSettings, alias: str, create: bool = True) -> OpenSearchCatalog:
        return cls(connect(url, options), alias, options.embedding_dim, options.refresh, create)

    def close(self) -> None:
        self.client.close()

    # -- index lifecycle ---------------------------------------------------------------------

    def _ensure(self, create: bool = True) -> None:
        """The template, the index behind the alias and the tombstones, made where missing; with
        `create=False` (commands that only read) nothing is made: a missing alias is a CatalogError
        (a mistyped PIXDEX_INDEX, an empty or restarted cluster). An alias on an index that is not
        pixdex's is refused either way, before anything is written into it."""
        # both lookups name the alias as the index: a role limited to pixdex's own indices may make
        # them (an alias lookup across all indices is checked against every index)
        exists = self.client.indices.exists(index=self.alias)
        if exists:
            self._check_ours()
            # an index of an earlier version: the fields it lacks (adding fields is no reindex)
            properties = index_body(self.embedding_dim)["mappings"]["properties"]
            self.client.indices.put_mapping(index=self.alias, body={"properties": {
                k: properties[k] for k in ADDED_FIELDS}})
        elif not create:
            raise CatalogError(f"no pixdex index {self.alias!r} in this OpenSearch: index images into it first "
                               "(pixdex index DIR), or check PIXDEX_CATALOG and PIXDEX_INDEX")
        if not create:
            return
        self.client.indices.put_index_template(name=self.alias, body={
            "index_patterns": [f"{self.alias}-v*"], "template": index_body(self.embedding_dim),
            "_meta": {"pixdex_mapping_version": MAPPING_VERSION}})
        if not exists:
            self.client.indices.create(index=self._new_index_name(), body={"aliases": {self.alias: {}}})
        if not self.client.indices.exists(index=self.tombstones):
            self.client.indices.create(index=self.tombstones, body=TOMBSTONES_BODY)

    def _check_ours(self) -> None:
        """Every index behind the alias carries pixdex's mapping (its _meta says which version)."""
        for name, body in self.client.indices.get_mapping(index=self.alias).items():
            meta = (body.get("mappings") or {}).get("_meta") or {}
            if "pixdex_mapping_version" not in meta:
                raise CatalogError(f"PIXDEX_INDEX={self.alias} names {name}, which is no pixdex index (its mapping "
                                   "has no pixdex_mapping_version): nothing was written to it; point the alias at "
                                   "pixdex's index or choose another PIXDEX_INDEX")

    def _new_index_name(self) -> str:
        return f"{self.alias}-v{MAPPING_VERSION}-{utcnow():%Y%m%d%H%M%S%f}"

    def reindex(self) -> tuple[str, str]:
        """Copy every record into a new index with the current mapping, then move the alias to it in
        one atomic step; readers never see a missing or half-filled index. Returns (old, new)."""
        with self._errors("reindex"):
            [old] = self.client.indices.get_alias(index=self.alias)
            new = self._new_index_name()
            self.client.indices.create(index=new)
            self.client.reindex(body={"source": {"index": old}, "dest": {"index": new}},
                                wait_for_completion=True, refresh=True)
            self.client.indices.update_aliases(body={"actions": [
                {"remove": {"index": old, "alias": self.alias}}, {"add": {"index": new, "alias": self.alias}}]})
        return old, new

    # -- writes ------------------------------------------------------------------------------

    def upsert_many(self, records: Iterable[Record], keep_reviews: bool = True,
                    expected: Mapping[str, str | None] | None = None) -> int:
        records = list({r.id: r for r in records}.values())
        for r in records:  # checked before anything is written: a bulk request is no transaction
            if r.id != record_id(r.uri):
                raise CatalogError(f"record id {r.id!r} is not the id of its URI {r.uri!r}")
            if r.embedding is not None and len(r.embedding) != self.embedding_dim:
                raise CatalogError(f"{r.uri}: embedding has {len(r.embedding)} dimensions, the index "
                                   f"{self.embedding_dim} (PIXDEX_OPENSEARCH__EMBEDDING_DIM)")
        if not records:
            return 0
        with self._errors("write records"):
            return len(self._apply({r.id: r for r in records}, None, keep_reviews, expected))

    def delete(self, ids: Iterable[str], sequencer: str | None = None,
               expected: Mapping[str, str | None] | None = None) -> int:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return 0
        with self._errors("delete records"):
            removed = self._apply(dict.fromkeys(ids), sequencer, False, expected)
        return sum(removed.values())

    def _apply(self, changes: dict[str, Record | None], delete_sequencer: str | None, keep_reviews: bool,
               expected: Mapping[str, str | None] | None) -> dict[str, bool]:
        """Write records (a Record) or delete them (None, with `delete_sequencer`), each only if it
        is newer than what was applied to its id, safely against other writers at the same moment
        (many Lambdas, the backfill, the app). Per id, in rounds:

        1. read its record and its register (the `tombstones` doc: the last sequencer applied, and
           whether the key is deleted), each with its version (seq_no, primary_term);
        2. a stale change is dropped (and, with `expected`, one whose key has moved on); else the
           register takes the new sequencer, conditionally on the version read: of two writers,
           one wins, the other reads again;
        3. the record is written (keeping a review of the same bytes: `kept_review`) or deleted,
           conditionally on its version read: a change that lands in between (an event, a
           review) sends this one back to step 1, where it may now be stale;
        4. a record this call created is checked against its register once more: a newer delete
           or write registered meanwhile wins, and the record is removed (creating is the one
           write no version can guard: the record was not there).

        Returns {id: whether it changed something} (for a delete, whether a record was removed)
        for every id applied; stale ones are absent. CatalogUnavailable when an id was still
        contended after MAX_ATTEMPTS rounds (the same call can succeed later)."""
        pending, done, created = dict(changes), {}, {}
        for _ in range(MAX_ATTEMPTS):
            if not pending:
                break
            records, registers = self._read(list(pending))
            registering, writing = [], {}
            for id_, r in list(pending.items()):
                incoming = r.sequencer if r is not None else delete_sequencer
                rec, reg = records[id_], registers[id_]
                applied = _applied(rec, reg)
                step = _step(incoming, r is None, rec, reg)
                if expected is not None and applied != expected.get(id_):
                    step = "skip"  # a bucket event changed the key since the caller looked: it wins
                if step == "skip":
                    del pending[id_]  # stale (a newer change is registered), or already applied
                    continue
                # the order mark the record keeps: its event's; without one, the record's own (never a
                # sequencer another writer registered and has yet to write), or a deleted key's
                mark = incoming or (rec.sequencer if rec.version is not None else reg.sequencer)
                registered = step == "register" and mark is not None and (
                    incoming is not None or reg.deleted != (r is None))
                if registered:
                    body = {"sequencer": mark, **({"deleted_at": utcnow().isoformat()} if r is None else {})}
                    registering.append({"_op_type": "index", "_index": self.tombstones, "_id": id_, "_source": body,
                                        **_if(reg)})
                # the register a record this call creates must still find: checked in step 4
                want = (mark, False) if registered else (reg.sequencer, reg.deleted)
                writing[id_] = (r, rec, mark, registered, want)
            # registers are read by id (real-time), never searched: no refresh to wait for
            lost = {info["_id"] for info in self._bulk(registering, refresh=False) if info["status"] == 409}
            actions, wanted = [], {}
            for id_, (r, rec, mark, registered, want) in writing.items():
                if id_ in lost:
                    continue  # another writer registered first: read again
                if r is not None:
                    if keep_reviews and rec.source.get("reviewed_at"):
                        r = kept_review(r, _record(rec.source))
                    actions.append({"_op_type": "index", "_index": self.alias, "_id": id_, "_source": _doc(r, mark),
                                    **_if(rec)})
                    wanted[id_] = want
                elif rec.version is not None:
                    actions.append({"_op_type": "delete", "_index": self.alias, "_id": id_, **_if(rec)})
                elif registered:
                    continue  # a delete just registered: read the record again (a create may have landed)
                else:  # nothing to remove; the register says deleted
                    done[id_] = False
                    del pending[id_]
            for info in self._bulk(actions):
                id_ = info["_id"]
                if info["status"] == 409:
                    continue  # the record changed since it was read: read again
                del pending[id_]
                done[id_] = info["status"] in (200, 201)
                r = changes[id_]
                if r is not None and info.get("result") == "created" and (r.sequencer is not None or expected):
                    created[id_] = wanted[id_]
        if pending:
            raise CatalogUnavailable(f"{len(pending)} records were changed by other writers {MAX_ATTEMPTS} times "
                                     f"while this write tried to apply: try again")
        for id_ in self._superseded(created):
            done.pop(id_, None)
        return done

    def _superseded(self, created: dict[str, tuple[str | None, bool]]) -> list[str]:
        """Step 4 of _apply: the ids whose record this call created but whose register has moved on
        since (a newer delete or create registered meanwhile). A newer create writes its own record
        over this one; after a newer delete, the record is removed, whatever was written over it
        since (a review, a relabel of the bytes that are gone)."""
        if not created:
            return []
        _, registers = self._read(list(created), records=False)
        gone = [i for i, want in created.items() if (registers[i].sequencer, registers[i].deleted) != want]
        deleted = [i for i in gone if registers[i].deleted]
        for _ in range(MAX_ATTEMPTS):
            if not deleted:
                break
            records, _ = self._read(deleted)
            present = [i for i in deleted if records[i].version is not None]
            results = self._bulk([{"_op_type": "delete", "_index": self.alias, "_id": i, **_if(records[i])}
                                  for i in present])
            deleted = [info["_id"] for info in results if info["status"] == 409]  # written again: once more
        return gone

    def review(self, id_: str, labels: Sequence[Label], user: str) -> Record:
        """As Catalog.review, written only if the record is still as it was read (its version): a
        write landing in between (an event, another reviewer) makes it read and decide again, so
        neither is lost; after MAX_ATTEMPTS contended rounds, CatalogUnavailable (try again)."""
        with self._errors("review a record"):
            for _ in range(MAX_ATTEMPTS):
                found = self.get(id_)
                if found is None:
                    raise CatalogError(f"no image with id or URI {id_!r} in the catalogue")
                doc = self.client.mget(index=self.alias, body={"ids": [found.id]})["docs"][0]
                if not doc.get("found"):
                    continue  # deleted since: the next round says so
                current = _record(doc["_source"])
                reviewed = self._reviewed_record(current, labels, user)
                [info] = self._bulk([{"_op_type": "index", "_index": self.alias, "_id": current.id,
                                      "_source": _doc(reviewed, current.sequencer),
                                      "if_seq_no": doc["_seq_no"], "if_primary_term": doc["_primary_term"]}])
                if info["status"] != 409:
                    return reviewed
        raise CatalogUnavailable(f"the image {id_!r} kept changing while it was reviewed: try again")

    def sequencers(self, ids: Sequence[str]) -> dict[str, str]:
        with self._errors("read sequencers"):
            records, registers = self._read(list(ids))
        applied = {i: _applied(records[i], registers[i]) for i in records}
        return {i: mark for i, mark in applied.items() if mark is not None}

    def _read(self, ids: list[str], records: bool = True) -> tuple[dict[str, _Seen], dict[str, _Seen]]:
        """Each id's record and register as they are now, with their versions (real-time mget)."""
        out: tuple[dict[str, _Seen], dict[str, _Seen]] = ({}, {})
        for index, seen in zip((self.alias, self.tombstones), out, strict=True):
            if index == self.alias and not records:
                continue
            for chunk in chunks(ids):
                # a record whole but its embedding (its review is kept by the write); a register whole
                found = self.client.mget(index=index, body={"ids": chunk}, _source_excludes=["embedding"])
                for doc in found["docs"]:
                    if doc.get("found"):
                        src = doc.get("_source") or {}
                        seen[doc["_id"]] = _Seen((doc["_seq_no"], doc["_primary_term"]), src.get("sequencer"),
                                                 bool(src.get("deleted_at")), src)
            for i in ids:
                seen.setdefault(i, _Seen())
        return out

    def prune_tombstones(self, older_than: timedelta = TOMBSTONE_RETENTION) -> int:
        """Forget deleted keys' sequencers older than `older_than` (default: SQS's longest retention,
        14 days: no event older than that can still arrive). Returns how many were removed."""
        cutoff = (utcnow() - older_than).isoformat()
        with self._errors("prune tombstones"):
            answer = self.client.delete_by_query(index=self.tombstones, body={
                "query": {"range": {"deleted_at": {"lt": cutoff}}}}, refresh=True, conflicts="proceed")
        return int(answer.get("deleted", 0))

    def _bulk(self, actions: list[dict], refresh: str | bool | None = None) -> list[dict]:
        """streaming_bulk with backoff on 429; every per-document error is raised, none swallowed,
        except a version conflict (409: the caller reads again) and deleting what is not there.
        Returns each action's result (`_id`, `status`, `result`, `_seq_no`, `_primary_term`)."""
        results, errors = [], []
        for ok, item in helpers.streaming_bulk(
                self.client, actions, chunk_size=500, max_chunk_bytes=MAX_CHUNK_BYTES, max_retries=5,
                initial_backoff=1, max_backoff=30, raise_on_error=False, raise_on_exception=True,
                refresh=self.refresh if refresh is None else refresh):
            [(op, info)] = item.items()
            results.append(info)
            if not ok and info.get("status") != 409 and not (op == "delete" and info.get("status") == 404):
                errors.append(f"{op} {info.get('_id')}: {info.get('error')}")
        if errors:
            raise CatalogError(f"{len(errors)} of {len(actions)} writes failed: " + "; ".join(errors[:3]))
        return results

    # -- reads -------------------------------------------------------------------------------

    def get(self, id_or_uri: str) -> Record | None:
        """By id (real-time, like get_many), else by URI (a search: visible after the refresh)."""
        if not can_name_a_record(id_or_uri):
            return None
        with self._errors("read a record"):
            by_id = self.client.mget(index=self.alias, body={"ids": [id_or_uri]})["docs"][0]
            if by_id.get("found"):
                return _record(by_id["_source"])
            found = self.client.search(index=self.alias, body={"size": 1, "query": {
                "term": {"uri": id_or_uri}}})["hits"]["hits"]
        return _record(found[0]["_source"]) if found else None

    def get_many(self, ids: Sequence[str]) -> dict[str, Record]:
        out: dict[str, Record] = {}
        with self._errors("read records"):
            for chunk in chunks(list(ids)):
                docs = self.client.mget(index=self.alias, body={"ids": chunk}, _source_excludes=["embedding"])["docs"]
                out.update({d["_id"]: _record(d["_source"]) for d in docs if d.get("found")})
        return out

    def search(self, query: Query) -> Page:
        body: dict[str, Any] = {"query": _query(query), "size": query.limit + 1, "sort": _sort(query),
                                "track_total_hits": True, "_source": {"excludes": ["embedding"]}}
        if query.cursor:
            c = Cursor.decode(query.cursor, query.sort, dates=int)  # indexed_us, taken_at in epoch ms
            # a cursor says None where the record had no value; search_after takes the value sorted by, never null
            body["search_after"] = [NO_VALUE if c.value is None else c.value, c.id]
        with self._errors("search"):
            hits = self.client.search(index=self.alias, body=body)["hits"]
        found = hits["hits"][:query.limit]
        next_cursor = None
        if len(hits["hits"]) > query.limit and found:
            value, id_ = found[-1]["sort"]
            next_cursor = Cursor(query.sort, None if value == NO_VALUE else value, id_).encode()
        return Page([_record(h["_source"]) for h in found], hits["total"]["value"], next_cursor)

    def facets(self, query: Query, size: int = 50) -> list[tuple[str, int]]:
        body = {"size": 0, "query": _query(query), "aggs": {"labels": {"nested": {"path": "labels"}, "aggs": {
            "matched": {"filter": _confident(query.min_confidence), "aggs": {"names": {"terms": {
                "field": "labels.name", "size": size, "order": [{"_count": "desc"}, {"_key": "asc"}]}}}}}}}}
        with self._errors("count labels"):
            aggs = self.client.search(index=self.alias, body=body)["aggregations"]
        buckets = aggs["labels"]["matched"]["names"]["buckets"]
        return sorted(((b["key"], b["doc_count"]) for b in buckets), key=lambda nc: (-nc[1], nc[0].casefold()))

    def label_counts_per_day(self, query: Query, labels: Sequence[str] | None = None) -> list[DayCount]:
        wanted = [_confident(query.min_confidence)]
        if labels:
            wanted.append({"terms": {"labels.name.lc": [n.lower() for n in labels]}})
        body = {"size": 0, "query": _query(query), "aggs": {"days": {
            "date_histogram": {"field": "indexed_at", "calendar_interval": "day", "time_zone": "UTC",
                               "min_doc_count": 1},
            "aggs": {"labels": {"nested": {"path": "labels"}, "aggs": {"matched": {
                "filter": {"bool": {"filter": wanted}},
                "aggs": {"names": {"terms": {"field": "labels.name", "size": 5000}}}}}}}}}}
        with self._errors("count labels per day"):
            days = self.client.search(index=self.alias, body=body)["aggregations"]["days"]["buckets"]
        out = [DayCount(d["key_as_string"][:10], b["key"], b["doc_count"])
               for d in days for b in d["labels"]["matched"]["names"]["buckets"]]
        return sorted(out, key=lambda c: (c.day, c.label.casefold()))

    def counts(self, query: Query, field: str, size: int = 50) -> list[tuple[str, int]]:
        if field not in COUNT_FIELDS:
            raise CatalogError(f"cannot count by {field!r}; one of {', '.join(COUNT_FIELDS)}")
        if field in ("day", "month_taken"):
            day = field == "day"
            agg = {"date_histogram": {"field": "indexed_at" if day else "taken_at",
                                      "calendar_interval": "day" if day else "month", "time_zone": "UTC",
                                      "min_doc_count": 1}}
        else:
            agg = {"terms": {"field": "error.raw" if field == "error" else field, "size": size,
                             "order": [{"_count": "desc"}, {"_key": "asc"}]}}
        with self._errors(f"count by {field}"):
            buckets = self.client.search(index=self.alias, body={"size": 0, "query": _query(query), "aggs": {
                "by": agg}})["aggregations"]["by"]["buckets"]
        if field in ("day", "month_taken"):  # oldest first, the latest `size`
            length = 10 if field == "day" else 7
            return [(b["key_as_string"][:length], b["doc_count"]) for b in buckets][-size:]
        return [(b["key"], b["doc_count"]) for b in buckets]

    def _nearest(self, target: Record, k: int) -> list[tuple[Record, float]]:
        with self._errors("find similar images"):
            hits = self.client.search(index=self.alias, body=similar_body(target, k))["hits"]["hits"]
        # the cosinesimil space scores (1 + cos) / 2
        return [(_record(h["_source"]), 2 * h["_score"] - 1) for h in hits if h["_id"] != target.id][:k]

    def fingerprints(self, embeddings: bool = True, page: int = 1000) -> Iterator[
            tuple[str, str | None, str | None, np.ndarray | None]]:
        fields = ["content_hash", "model_id", "embedding"] if embeddings else ["content_hash"]
        after: list[str] | None = None
        while True:  # pages by id (search_after): each request stands alone, no scroll context to keep
            body: dict[str, Any] = {"size": page, "sort": [{"id": "asc"}], "_source": {"includes": fields},
                                    "query": {"match_all": {}}}
            if after:
                body["search_after"] = after
            with self._errors("list what duplicates are found by"):
                hits = self.client.search(index=self.alias, body=body)["hits"]["hits"]
            for h in hits:
                src, emb = h["_source"], h["_source"].get("embedding")
                yield (h["_id"], src.get("content_hash"), embedding_model(src.get("model_id")) if emb else None,
                       np.asarray(emb, dtype=np.float32) if emb else None)
            if len(hits) < page:
                return
            after = hits[-1]["sort"]

    def same_content(self, content_hash: str, limit: int = 100) -> list[Record]:
        body = {"size": limit, "sort": [{"id": "asc"}], "_source": {"excludes": ["embedding"]},
                "query": {"term": {"content_hash": content_hash}}}
        with self._errors("find records by content"):
            hits = self.client.search(index=self.alias, body=body)["hits"]["hits"]
        return [_record(h["_source"]) for h in hits]

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except OpenSearchException as exc:
            status = exc.status_code if isinstance(exc, TransportError) else None
            # no connection, a timeout, throttling or a 5xx: the same call can succeed later
            kind = CatalogUnavailable if isinstance(exc, ConnectionFailed) or status == 429 or (
                isinstance(status, int) and status >= 500) else CatalogError
            raise kind(f"OpenSearch could not {doing} (index {self.alias}): {exc}") from exc


# -- documents <-> records ---------------------------------------------------------------------

def _us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // timedelta(microseconds=1)


def _doc(r: Record, sequencer: str | None) -> dict[str, Any]:
    """The record's document: its fields (catalog/fields.py) with `sequencer` (the record's, or the
    one already applied), and what this index derives: sort keys, labels as nested docs, embedding."""
    own = {lb.name.casefold() for lb in r.labels}
    labels = [{"name": lb.name, "confidence": lb.confidence, "source": str(lb.source), "parents": list(lb.parents),
               "inherited": False} for lb in r.labels]
    labels += [{"name": name, "confidence": conf, "source": str(Source.MODEL), "parents": [], "inherited": True}
               for name, conf in label_rows_of(r) if name.casefold() not in own]
    return {
        **encode(r),
        "sequencer": sequencer,
        "indexed_us": _us(r.indexed_at),
        "top_confidence": r.top_label.confidence if r.top_label else -1.0,
        "labels": labels,
        "label_names": r.label_names,
        "embedding": None if r.embedding is None else [float(x) for x in r.embedding],
        "faces": [list(f) for f in r.faces],
        "face_count": len(r.faces),
        "location": None if r.latitude is None or r.longitude is None else {"lat": r.latitude, "lon": r.longitude},
    }


def _record(src: dict[str, Any]) -> Record:
    labels = [Label(lb["name"], lb["confidence"], Source(lb["source"]), tuple(lb["parents"]))
              for lb in src.get("labels", []) if not lb.get("inherited")]
    emb = src.get("embedding")
    return Record(**decode(src), labels=labels, faces=[tuple(f) for f in src.get("faces") or []],
                  embedding=None if emb is None else np.asarray(emb, dtype=np.float32))


# -- the query object -> OpenSearch DSL ---------------------------------------------------------

def _confident(min_confidence: float) -> dict:
    return {"range": {"labels.confidence": {"gte": min_confidence}}}


def _names(names: Sequence[str]) -> dict:
    return {"terms": {"labels.name.lc": [n.lower() for n in names]}}


def _words(text: str) -> dict:
    """A label name with a word starting with `text` (a phrase prefix for several words)."""
    return {"match_phrase_prefix": {"labels.name.words": {"query": text.strip(), "max_expansions": 1000}}}


def _has_label(condition: dict, min_confidence: float) -> dict:
    """Some label of the image satisfies `condition` at the minimum confidence: one nested doc."""
    return {"nested": {"path": "labels", "query": {"bool": {"filter": [condition, _confident(min_confidence)]}}}}


def _query(q: Query) -> dict:
    must: list[dict] = []
    must_not: list[dict] = []
    must += [_has_label(_names([n]), q.min_confidence) for n in q.all_of]
    if q.any_of:
        must.append(_has_label(_names(q.any_of), q.min_confidence))
    if q.none_of:
        must_not.append(_has_label(_names(q.none_of), q.min_confidence))
    if q.text:
        must.append(_has_label(_words(q.text), q.min_confidence))
    if not (q.all_of or q.any_of or q.text) and q.min_confidence > 0:
        must.append({"range": {"top_confidence": {"gte": q.min_confidence}}})
    if q.status:
        must.append({"term": {"status": str(q.status)}})
    if q.review_below is not None:
        must.append({"bool": {"must_not": [{"exists": {"field": "reviewed_at"}}], "minimum_should_match": 1,
                              "should": [{"bool": {"must_not": [{"term": {"status": str(Status.LABELED)}}]}},
                                         {"range": {"top_confidence": {"lt": q.review_below}}}]}})
    if q.source_prefix:
        must.append({"prefix": {"uri": q.source_prefix}})
    for field_, since, until, encode_ in (("indexed_us", q.since, q.until, _us),
                                          ("taken_at", q.taken_since, q.taken_until, utc_iso)):
        bounds = {op: encode_(at) for op, at in (("gte", since), ("lt", until)) if at is not None}
        if bounds:
            must.append({"range": {field_: bounds}})
    if q.camera:
        must.append({"term": {"camera.lc": q.camera.lower()}})
    if q.has_location is not None:
        (must if q.has_location else must_not).append({"exists": {"field": "location"}})
    if q.has_date is not None:
        (must if q.has_date else must_not).append({"exists": {"field": "taken_at"}})
    if q.near is not None:
        lat, lon, radius = q.near
        must.append({"geo_distance": {"distance": f"{radius * 1000!r}m", "location": {"lat": lat, "lon": lon}}})
    if q.within is not None:  # west > east: the box crosses the antimeridian, as geo_bounding_box reads it
        south, west, north, east = q.within
        must.append({"geo_bounding_box": {"location": {"top_left": {"lat": north, "lon": west},
                                                       "bottom_right": {"lat": south, "lon": east}}}})
    return {"bool": {"filter": must, "must_not": must_not}}


def _sort(q: Query) -> list[dict]:
    """Newest first, newest taken first (undated last), or by the confidence of the matched label
    (best of them); ties by id."""
    if q.sort == Sort.DATE:
        return [{"indexed_us": "desc"}, {"id": "desc"}]
    if q.sort == Sort.TAKEN:
        return [{"taken_at": {"order": "desc", "missing": "_last"}}, {"id": "desc"}]
    if not (q.matched_labels or q.text):
        return [{"top_confidence": "desc"}, {"id": "desc"}]
    matched = [_names(q.matched_labels)] if q.matched_labels else []
    if q.text:
        matched.append(_words(q.text))
    return [{"labels.confidence": {"order": "desc", "mode": "max", "missing": -1, "nested": {
        "path": "labels", "filter": {"bool": {"should": matched, "minimum_should_match": 1}}}}}, {"id": "desc"}]


@dataclass(frozen=True)
class _Seen:
    """A document as one read found it: its version, for a write that must find it unchanged."""

    version: tuple[int, int] | None = None  # (seq_no, primary_term); None: not there
    sequencer: str | None = None
    deleted: bool = False  # a register: the key is deleted
    source: dict[str, Any] = field(default_factory=dict, compare=False)  # what was read of it


def _applied(rec: _Seen, reg: _Seen) -> str | None:
    """The last sequencer applied to a key: its record's or its register's, the newer."""
    return max((m for m in (rec.sequencer, reg.sequencer) if m), default=None)


def _step(incoming: str | None, deleting: bool, rec: _Seen, reg: _Seen) -> str:
    """What _apply does next for one change: "skip" it (stale, or applied already), "register" its
    sequencer, or (registered already, by this writer in an earlier round, by a copy of the same
    event, or by a writer that stopped half-way) "write" the record."""
    if incoming is None:  # no order to keep (folders, backfill, reviews): it applies
        return "register"
    if reg.sequencer == incoming and reg.deleted == deleting:
        if rec.sequencer is not None and rec.sequencer > incoming:
            return "skip"  # a newer record beside an older register (written before registers were kept)
        if deleting:
            return "write" if rec.version is not None else "skip"
        return "skip" if rec.sequencer is not None and rec.sequencer >= incoming else "write"
    applied = _applied(rec, reg)
    return "register" if is_newer(incoming, applied) else "skip"


def _if(seen: _Seen) -> dict[str, Any]:
    """The condition of a write that must find the document as it was read (absent: create it)."""
    if seen.version is None:
        return {"_op_type": "create"}
    return {"if_seq_no": seen.version[0], "if_primary_term": seen.version[1]}
