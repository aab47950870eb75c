"""Stats: images per day, photos per month taken, labels over time, top labels, failure reasons,
models in the catalogue."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from indexer.catalog import CatalogError, Query
from indexer.record import Status
from ui.common import MONTHS, catalog, month_name, photos, undated_count

TOP = 20
OVER_TIME = 6


def main() -> None:
    cat = catalog()
    st.title("Stats")
    try:
        with st.spinner("Counting…"):
            statuses = dict(cat.counts(Query(), "status"))
            per_day = cat.counts(Query(), "day", size=366)
            top = cat.facets(Query(), size=TOP)
            per_label_day = cat.label_counts_per_day(Query(), [n for n, _ in top[:OVER_TIME]]) if top else []
            failures = cat.counts(Query(status=Status.FAILED), "error", size=10)
            models = cat.counts(Query(), "model_id", size=20)
            per_month = cat.counts(Query(), "month_taken", size=MONTHS)
            undated = undated_count(Query(status=Status.LABELED))  # a failed file is no known photo
    except CatalogError as exc:
        st.error(f"Cannot count: {exc}")
        return
    total = sum(statuses.values())
    if not total:
        st.info("The catalogue is empty. Index some photos: `pixdex index ~/Pictures`.")
        return
    a, b, c, d = st.columns(4)
    a.metric("Images", f"{total:,}")
    b.metric("Labelled", f"{statuses.get(Status.LABELED, 0):,}")
    c.metric("Failed", f"{statuses.get(Status.FAILED, 0):,}")
    d.metric("Not classified", f"{statuses.get(Status.NOT_CLASSIFIED, 0):,}")

    left, right = st.columns(2)
    with left:
        st.subheader("Images indexed per day")
        st.bar_chart(pd.DataFrame(per_day, columns=["day", "images"]).set_index("day"), y_label="images")
    with right:
        st.subheader("Top labels")
        st.bar_chart(pd.DataFrame(top, columns=["label", "images"]).set_index("label"), horizontal=True,
                     sort="-images")
    st.subheader("Photos per month taken")
    if per_month:
        frame = pd.DataFrame(per_month, columns=["month", "photos"])
        st.bar_chart(frame.set_index("month"), y_label="photos")  # UTC months, oldest first
        dated = sum(n for _, n in per_month)
        st.caption(f"{photos(dated)} with a date taken, {month_name(per_month[0][0])} to "
                   f"{month_name(per_month[-1][0])}; {photos(undated)} without one "
                   "(no:date status:labeled finds them).")
    else:
        st.caption(f"No photo has a date taken (EXIF): {photos(undated)} without one.")
    st.subheader("Labels over time")
    if per_label_day:
        frame = pd.DataFrame([(c.day, c.label, c.count) for c in per_label_day], columns=["day", "label", "images"])
        st.line_chart(frame, x="day", y="images", color="label")
    left, right = st.columns(2)
    with left:
        st.subheader("Failure reasons")
        if failures:
            st.dataframe(pd.DataFrame(failures, columns=["error", "images"]), hide_index=True, width="stretch")
        else:
            st.caption("No failures.")
    with right:
        st.subheader("Models")
        rows = [(m or "(none: read failures)", n) for m, n in models]
        st.dataframe(pd.DataFrame(rows, columns=["model_id", "images"]), hide_index=True, width="stretch")


main()
