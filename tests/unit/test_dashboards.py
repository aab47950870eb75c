"""indexer/data/dashboards.ndjson (package data; infra/dashboards/ links to it), checked without
OpenSearch Dashboards: it parses as a saved-objects export, its references resolve, and every
field it names is a field of the real images mapping."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from indexer.catalog.opensearch import index_body

ROOT = Path(__file__).resolve().parents[2]
NDJSON = ROOT / "indexer" / "data" / "dashboards.ndjson"
LINES = NDJSON.read_text().splitlines()
OBJECTS = [json.loads(line) for line in LINES]
BY_ID = {o["id"]: o for o in OBJECTS}
SEARCH_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
VISUALISATIONS = {
    "pixdex-top-labels": "Top labels",
    "pixdex-labelled-per-day": "Images labelled per day",
    "pixdex-confidence-histogram": "Confidence histogram",
    "pixdex-failures-by-reason": "Failures by reason",
    "pixdex-photos-per-month-taken": "Photos per month taken",
    "pixdex-photo-locations": "Photo locations",
}
NUMERIC = {"long", "integer", "short", "byte", "float", "double", "half_float", "scaled_float"}
# the aggregations each OpenSearch Dashboards agg type accepts, by mapping type
AGG_TYPES = {"terms": {"keyword", "boolean", "ip", *NUMERIC}, "date_histogram": {"date"}, "histogram": NUMERIC,
             "geohash_grid": {"geo_point"}}
# the schemas each visualisation type offers its aggregations, and the agg types a schema takes where
# it is restricted (OpenSearch Dashboards: vis_type_table, vis_type_vislib, tile_map/tile_map_type.js)
SCHEMAS = {"table": {"metric", "bucket", "split"}, "histogram": {"metric", "segment", "group", "split"},
           "tile_map": {"metric", "segment"}}
SCHEMA_AGGS = {("tile_map", "segment"): {"geohash_grid"},
               ("tile_map", "metric"): {"count", "avg", "sum", "min", "max", "cardinality", "top_hits"}}


def flatten(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted field name -> mapping type: objects and nested docs by their properties, multi-fields
    (`error.raw`) as subfields of their parent."""
    out: dict[str, str] = {}
    for name, spec in properties.items():
        path = prefix + name
        if "properties" in spec:
            out[path] = spec.get("type", "object")
            out.update(flatten(spec["properties"], path + "."))
        else:
            out[path] = spec["type"]
        for sub, sub_spec in spec.get("fields", {}).items():
            out[f"{path}.{sub}"] = sub_spec["type"]
    return out


MAPPING = flatten(index_body(1280)["mappings"]["properties"])


def of_type(kind: str) -> list[dict[str, Any]]:
    return [o for o in OBJECTS if o["type"] == kind]


def visualisations() -> list[dict[str, Any]]:
    return of_type("visualization")


def vis_state(o: dict[str, Any]) -> dict[str, Any]:
    return json.loads(o["attributes"]["visState"])


def search_source(o: dict[str, Any]) -> dict[str, Any]:
    return json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def kuery_fields(query: str) -> set[str]:
    """Field names of a KQL query's `field:value` clauses."""
    return set(re.findall(r"([A-Za-z_][\w.]*)\s*:", query))


def index_pattern_fields() -> dict[str, dict[str, Any]]:
    [pattern] = of_type("index-pattern")
    return {f["name"]: f for f in json.loads(pattern["attributes"]["fields"])}


def test_flatten_sees_subfields_and_nested_properties():
    assert MAPPING["error.raw"] == "keyword"
    assert MAPPING["labels"] == "nested"
    assert MAPPING["labels.name"] == "keyword"
    assert MAPPING["labels.name.lc"] == "keyword"
    assert MAPPING["label_names.words"] == "text"


def test_every_line_is_a_saved_object():
    assert LINES and all(line.strip() for line in LINES)
    for o in OBJECTS:
        assert isinstance(o, dict)
        assert isinstance(o["id"], str) and o["id"]
        assert o["type"] in {"index-pattern", "visualization", "dashboard"}
        assert isinstance(o["attributes"]["title"], str) and o["attributes"]["title"]
        assert isinstance(o["references"], list)
        assert set(o["migrationVersion"]) == {o["type"]}


def test_ids_unique():
    ids = [o["id"] for o in OBJECTS]
    assert len(ids) == len(set(ids))


def test_expected_objects_present():
    assert BY_ID["pixdex-images"]["type"] == "index-pattern"
    assert BY_ID["pixdex-overview"]["type"] == "dashboard"
    assert BY_ID["pixdex-overview"]["attributes"]["title"] == "pixdex overview"
    assert {o["id"]: o["attributes"]["title"] for o in visualisations()} == VISUALISATIONS


def test_every_reference_resolves_to_an_object_of_its_type():
    for o in OBJECTS:
        names = [r["name"] for r in o["references"]]
        assert len(names) == len(set(names)), o["id"]
        for ref in o["references"]:
            assert ref["id"] in BY_ID, (o["id"], ref)
            assert BY_ID[ref["id"]]["type"] == ref["type"], (o["id"], ref)


@pytest.mark.parametrize(("kind", "attribute"), [
    ("index-pattern", "fields"),
    ("visualization", "visState"),
    ("visualization", "uiStateJSON"),
    ("dashboard", "panelsJSON"),
    ("dashboard", "optionsJSON"),
])
def test_json_string_attributes_parse(kind, attribute):
    objects = of_type(kind)
    assert objects
    for o in objects:
        assert isinstance(o["attributes"][attribute], str), o["id"]
        json.loads(o["attributes"][attribute])


def test_search_sources_parse():
    for o in OBJECTS:
        meta = o["attributes"].get("kibanaSavedObjectMeta")
        if meta is not None:
            assert isinstance(search_source(o), dict), o["id"]
    for kind in ("visualization", "dashboard"):
        assert all("kibanaSavedObjectMeta" in o["attributes"] for o in of_type(kind))


def test_index_pattern_is_the_alias_with_its_time_field():
    pattern = BY_ID["pixdex-images"]["attributes"]
    assert pattern["title"] == "pixdex-images"
    assert MAPPING[pattern["timeFieldName"]] == "date"
    assert index_pattern_fields()[pattern["timeFieldName"]]["type"] == "date"


def test_index_pattern_fields_are_mapping_fields_of_their_type():
    fields = index_pattern_fields()
    for name, field in fields.items():
        if name.startswith("_"):  # metadata fields: _id, _index, _source ...
            continue
        assert name in MAPPING, name
        assert field["esTypes"] == [MAPPING[name]], name


def test_visualisations_search_the_index_pattern():
    for o in visualisations():
        source = search_source(o)
        assert source["indexRefName"] == SEARCH_REF, o["id"]
        assert source["query"]["language"] == "kuery", o["id"]
        assert {"name": SEARCH_REF, "type": "index-pattern", "id": "pixdex-images"} in o["references"], o["id"]
        assert vis_state(o)["title"] == o["attributes"]["title"], o["id"]


def test_aggregation_fields_exist_aggregatable_and_of_a_fitting_type():
    fields = index_pattern_fields()
    used = set()
    for o in visualisations():
        for agg in vis_state(o)["aggs"]:
            field = agg["params"].get("field")
            if field is None:
                continue
            used.add(field)
            assert field in MAPPING, (o["id"], field)
            assert MAPPING[field] in AGG_TYPES[agg["type"]], (o["id"], agg["type"], field)
            assert fields[field]["aggregatable"], (o["id"], field)
    assert {"label_names", "indexed_at", "top_confidence", "error.raw", "taken_at", "location"} <= used


def test_aggregations_fit_the_schemas_of_their_visualisation_type():
    for o in visualisations():
        state = vis_state(o)
        ids = [a["id"] for a in state["aggs"]]
        assert len(ids) == len(set(ids)), o["id"]
        for agg in state["aggs"]:
            assert agg["enabled"] is True and isinstance(agg["params"], dict), (o["id"], agg["id"])
            assert agg["schema"] in SCHEMAS[state["type"]], (o["id"], agg["schema"])
            assert agg["type"] in SCHEMA_AGGS.get((state["type"], agg["schema"]), {agg["type"]}), (o["id"], agg)


def test_kuery_fields_exist():
    queries = {o["id"]: search_source(o)["query"]["query"] for o in visualisations()}
    assert queries["pixdex-confidence-histogram"] == "status:LABELED"
    assert queries["pixdex-failures-by-reason"] == "status:FAILED"
    for vid, query in queries.items():
        for field in kuery_fields(query):
            assert field in MAPPING, (vid, field)
            assert field in index_pattern_fields(), (vid, field)


def test_aggregations_as_specified():
    def bucket(vid: str) -> dict[str, Any]:
        [agg] = [a for a in vis_state(BY_ID[vid])["aggs"] if a["schema"] != "metric"]
        return agg

    top = bucket("pixdex-top-labels")
    assert (top["type"], top["params"]["field"], top["params"]["size"]) == ("terms", "label_names", 20)
    per_day = bucket("pixdex-labelled-per-day")
    assert (per_day["type"], per_day["params"]["field"]) == ("date_histogram", "indexed_at")
    assert per_day["params"]["interval"] in {"d", "1d"}
    confidence = bucket("pixdex-confidence-histogram")
    assert (confidence["type"], confidence["params"]["field"], confidence["params"]["interval"]) == (
        "histogram", "top_confidence", 0.1)
    failures = bucket("pixdex-failures-by-reason")
    assert (failures["type"], failures["params"]["field"], failures["params"]["size"]) == ("terms", "error.raw", 20)
    per_month = bucket("pixdex-photos-per-month-taken")
    assert (per_month["type"], per_month["params"]["field"], per_month["params"]["interval"]) == (
        "date_histogram", "taken_at", "M")  # "M": Dashboards' calendar month (calendar_interval 1M)
    where = bucket("pixdex-photo-locations")
    assert (where["type"], where["params"]["field"]) == ("geohash_grid", "location")
    assert where["params"]["useGeocentroid"] and where["params"]["isFilteredByCollar"]
    assert vis_state(BY_ID["pixdex-photo-locations"])["params"]["mapType"] == "Scaled Circle Markers"
    for o in visualisations():
        assert [a["type"] for a in vis_state(o)["aggs"] if a["schema"] == "metric"] == ["count"], o["id"]


def test_dashboard_panels_have_their_references():
    dashboard = BY_ID["pixdex-overview"]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    ref_names = [p["panelRefName"] for p in panels]
    assert ref_names == [f"panel_{n}" for n in range(len(VISUALISATIONS))]
    assert len({p["panelIndex"] for p in panels}) == len(panels)
    refs = {r["name"]: r for r in dashboard["references"]}
    assert set(refs) == set(ref_names)
    assert all(refs[name]["type"] == "visualization" for name in ref_names)
    assert {refs[name]["id"] for name in ref_names} == set(VISUALISATIONS)
    cells = set()
    for p in panels:
        grid = p["gridData"]
        assert {"x", "y", "w", "h"} <= set(grid), p["panelIndex"]
        assert grid["i"] == p["panelIndex"] and grid["x"] + grid["w"] <= 48, p["panelIndex"]  # 48 columns
        covered = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                   for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not covered & cells, p["panelIndex"]  # no panel over another
        cells |= covered
