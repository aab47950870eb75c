"""The OpenSearch backend against osmem-server (a real HTTP server): parity with SQLite, the index
layout, reindexing behind the alias, errors, and the knn request it sends."""

from __future__ import annotations

from dataclasses import replace

import pytest
from opensearchpy import OpenSearch
from test_catalog_contract import CORPUS, names, rec

from indexer.catalog import CatalogError, Query, Sort, open_catalog
from indexer.catalog.opensearch import MAPPING_VERSION, OpenSearchCatalog, similar_body
from indexer.settings import Settings

SETTINGS = Settings(opensearch={"embedding_dim": 3})

QUERIES = [
    Query(), Query(all_of=("cat",)), Query(all_of=("Cat", "dog")), Query(any_of=("dog", "coffee")),
    Query(all_of=("cat",), none_of=("dog",), min_confidence=0.5), Query(text="cat"), Query(text="espr"),
    Query(min_confidence=0.5), Query(source_prefix="file:///photos/b"),
    Query(any_of=("cat", "dog"), sort=Sort.CONFIDENCE),
    Query(text="cat", sort=Sort.CONFIDENCE), Query(sort=Sort.CONFIDENCE), Query(all_of=("animal",), limit=2),
]


@pytest.fixture
def both(tmp_path, osmem_clone):
    with open_catalog(f"sqlite:///{tmp_path / 'c.db'}") as sqlite, open_catalog(osmem_clone.url, SETTINGS) as os_:
        sqlite.upsert_many(CORPUS)
        os_.upsert_many(CORPUS)
        yield sqlite, os_


def test_same_data_same_queries_same_answers(both):
    sqlite, opensearch = both
    for query in QUERIES:
        a, b = sqlite.search(query), opensearch.search(query)
        assert (names(a), a.total, a.next_cursor is None) == (names(b), b.total, b.next_cursor is None), query
        assert sqlite.facets(query) == opensearch.facets(query), query
        assert sqlite.label_counts_per_day(query) == opensearch.label_counts_per_day(query), query
    for record in CORPUS:
        a, b = sqlite.get(record.uri), opensearch.get(record.uri)
        assert (a.labels, a.label_names, a.indexed_at, a.status, a.error) == \
               (b.labels, b.label_names, b.indexed_at, b.status, b.error)


def test_a_versioned_index_behind_the_alias_and_a_reindex_that_swaps_it(osmem_clone):
    client = OpenSearch(hosts=[osmem_clone.url])
    catalog = open_catalog(osmem_clone.url, SETTINGS)
    catalog.upsert_many(CORPUS)
    [old] = client.indices.get_alias(name="pixdex-images")
    assert old.startswith(f"pixdex-images-v{MAPPING_VERSION}-")
    mapping = client.indices.get_mapping(index=old)[old]["mappings"]
    assert mapping["properties"]["labels"]["type"] == "nested"
    assert mapping["properties"]["embedding"]["type"] == "knn_vector"

    before = names(catalog.search(Query(all_of=("cat",))))
    was, new = catalog.reindex()
    assert was == old and list(client.indices.get_alias(name="pixdex-images")) == [new]
    assert names(catalog.search(Query(all_of=("cat",)))) == before
    assert catalog.search(Query()).total == len(CORPUS)


def test_refusals_name_the_problem(osmem_clone):
    catalog = open_catalog(osmem_clone.url, SETTINGS)
    wide = rec("wide", {"cat": 0.9}, emb=[1, 0, 0, 0])
    with pytest.raises(CatalogError, match="4 dimensions, the index 3"):
        catalog.upsert_many([rec("fine", {"cat": 0.5}, emb=[1, 0, 0]), wide])
    assert catalog.search(Query()).total == 0  # refused before anything was written
    with pytest.raises(CatalogError, match=r"OpenSearch could not prepare the index.*Connection"):
        open_catalog("http://127.0.0.1:9", SETTINGS)


def test_reads_make_nothing_and_an_alias_on_a_foreign_index_is_refused(osmem_clone):
    """A read on an empty cluster or under a mistyped PIXDEX_INDEX made templates and indices and
    answered "0 of 0 images"; an alias moved onto another application's index was written into."""
    client = OpenSearch(hosts=[osmem_clone.url])
    typo = Settings(opensearch={"embedding_dim": 3}, index="typo-images")
    with pytest.raises(CatalogError, match="no pixdex index 'typo-images' in this OpenSearch"):
        open_catalog(osmem_clone.url, typo, create=False)
    assert not client.indices.get(index="typo-images*") and not client.indices.exists_index_template(
        name="typo-images")
    open_catalog(osmem_clone.url, SETTINGS).close()  # pixdex's own index: reads open it
    open_catalog(osmem_clone.url, SETTINGS, create=False).close()
    client.indices.create(index="foreign", body={"mappings": {"properties": {"title": {"type": "text"}}}})
    client.indices.update_aliases(body={"actions": [{"add": {"index": "foreign", "alias": "elsewhere"}}]})
    for create in (True, False):
        with pytest.raises(CatalogError, match="names foreign, which is no pixdex index"):
            open_catalog(osmem_clone.url, Settings(opensearch={"embedding_dim": 3}, index="elsewhere"), create=create)
    assert "uri" not in client.indices.get_mapping(index="foreign")["foreign"]["mappings"].get("properties", {})


def test_the_knn_request_has_the_documented_shape():
    # opensearch.org docs, k-NN query: {"knn": {FIELD: {"vector": [...], "k": K, "filter": {...}}}}
    target = CORPUS[0]
    body = similar_body(target, k=5)
    knn = body["query"]["knn"]["embedding"]
    assert knn["vector"] == pytest.approx(list(target.embedding)) and knn["k"] == 6  # itself, then 5 others
    # the same embedding model: its weights, whatever rule files or face detector made the labels
    same = {"bool": {"should": [{"term": {"model_id": "m@1"}}, {"prefix": {"model_id": "m@1+"}}],
                     "minimum_should_match": 1}}
    assert knn["filter"] == {"bool": {"filter": [same], "must_not": [{"ids": {"values": [target.id]}}]}}
    assert body["size"] == 5 and body["_source"] == {"excludes": ["embedding"]}


def test_similar_reaches_the_server_and_its_refusal_is_a_catalogue_error(osmem_clone):
    catalog = open_catalog(osmem_clone.url, SETTINGS)
    catalog.upsert_many(CORPUS)
    with pytest.raises(CatalogError, match=r"could not find similar images.*knn"):  # osmem: no knn queries
        catalog.similar(CORPUS[0].id)


def test_writes_can_skip_the_refresh_for_bulk_loads(osmem_clone):
    catalog = OpenSearchCatalog(OpenSearch(hosts=[osmem_clone.url]), "bulk", embedding_dim=3, refresh=False)
    assert catalog.upsert_many(CORPUS) == len(CORPUS)
    catalog.client.indices.refresh(index="bulk")
    assert catalog.search(Query()).total == len(CORPUS)


def test_the_cli_on_opensearch_is_one_setting_away(osmem_clone, photos):
    import json
    import os
    import subprocess
    import sys

    def pixdex(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "indexer.cli", *args], capture_output=True, text=True,
                              env={**os.environ, "PIXDEX_CATALOG": osmem_clone.url, "PIXDEX_DEVICE": "cpu"})

    indexed = pixdex("index", str(photos))
    assert indexed.returncode == 0, indexed.stderr
    found = pixdex("search", "cat", "--json")
    assert [r["key"] or r["uri"].rsplit("/", 1)[-1] for r in json.loads(found.stdout)] == ["cat.png"]
    moved = pixdex("reindex")
    assert moved.returncode == 0 and f"alias pixdex-images: pixdex-images-v{MAPPING_VERSION}-" in moved.stdout
    assert "indexed before content hashes" not in moved.stdout  # every record here was read by this version
    with open_catalog(osmem_clone.url) as catalog:  # as an earlier version left it: no hash, no EXIF
        [older] = catalog.search(Query(all_of=("espresso",))).records
        catalog.upsert_many([replace(catalog.get(older.id), content_hash=None)])
    moved = pixdex("reindex")
    assert "1 record was indexed before content hashes and EXIF were read" in moved.stdout
    assert "--relabel-model-older" in moved.stdout
    assert json.loads(pixdex("search", "coffee", "--json").stdout)[0]["uri"].endswith("coffee.jpg")
    assert "reindex is for an OpenSearch catalogue" in subprocess.run(
        [sys.executable, "-m", "indexer.cli", "--catalog", "sqlite:////tmp/x.db", "reindex"],
        capture_output=True, text=True).stderr


def test_a_document_the_index_refuses_is_an_error_with_its_reason(osmem_clone):
    from indexer.record import Record, Status

    catalog = open_catalog(osmem_clone.url, SETTINGS)
    bad = Record(uri="file:///photos/bad.jpg", status=Status.LABELED, size="twelve")  # not a long
    with pytest.raises(CatalogError, match=r"1 of \d+ writes failed: (index|create) [0-9a-f]{32}: .*size"):
        catalog.upsert_many([rec("fine", {"cat": 0.5}), bad])
    assert names(catalog.search(Query())) == ["fine"]  # the others were written; nothing silently dropped


def test_an_index_of_the_first_mapping_gains_the_new_fields_when_opened(osmem_clone):
    """An index made by a version without faces (MAPPING_VERSION 1) takes records with faces as soon
    as this version opens it: new fields are added in place, no reindex needed."""
    from dataclasses import replace

    from indexer.catalog.opensearch import ADDED_FIELDS, index_body

    client = OpenSearch(hosts=[osmem_clone.url])
    old = index_body(3)
    for name in ADDED_FIELDS:
        del old["mappings"]["properties"][name]
    client.indices.create(index="pixdex-images-v1-20240101000000000000", body={**old, "aliases": {"pixdex-images": {}}})
    catalog = open_catalog(osmem_clone.url, SETTINGS)
    catalog.upsert_many([replace(CORPUS[0], faces=[(0.1, 0.2, 0.3, 0.4, 0.99)])])
    assert catalog.get(CORPUS[0].uri).faces == [(0.1, 0.2, 0.3, 0.4, 0.99)]
    props = client.indices.get_mapping(index="pixdex-images")["pixdex-images-v1-20240101000000000000"]
    assert set(ADDED_FIELDS) <= set(props["mappings"]["properties"])
