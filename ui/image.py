"""One image: the picture, every label with its confidence and source, parent concepts, metadata,
status, its copies (the same bytes, or resized, re-encoded, mirrored), and images that look alike.
Reached with ?id=<record id>."""

from __future__ import annotations

import streamlit as st

from indexer.catalog import CatalogError
from indexer.catalog.duplicates import NEAR_THRESHOLD, exact_copies
from indexer.record import Source, Status
from ui.common import SEARCH_PAGE, SEARCH_PARAMS, catalog, file_name, grid, md, quoted, search_of, thumbnails
from ui.decisions import add_box, label_buttons, report
from ui.thumbnails import PREVIEW_SIDE

# cosine of the embeddings, chosen on the validation set (make bench: tests/bench/bench_similar.py): at 0.35,
# 88% of pairs above it share a search word and 132 of 144 photos keep a neighbour; a dog's unrelated
# neighbours (people, 0.32-0.34) fall below it, the other dogs (0.39, 0.41) stay
SIMILAR_CUTOFF = 0.35
SIMILAR_SHOWN = 8
COPIES_SHOWN = 24


def neighbours(cat, ref: str, search: dict[str, str]) -> tuple[str | None, str | None]:
    """The images before and after this one on the search page it was opened from (its page only)."""
    if not search:
        return None, None
    try:
        ids = [r.id for r in cat.search(search_of(search)).records]
    except CatalogError:
        return None, None
    if ref not in ids:
        return None, None
    at = ids.index(ref)
    return (ids[at - 1] if at > 0 else None), (ids[at + 1] if at + 1 < len(ids) else None)


def go(image_id: str) -> None:
    st.query_params["id"] = image_id


def main() -> None:
    cat = catalog()
    ref = st.query_params.get("id")
    search = {k: st.query_params[k] for k in SEARCH_PARAMS if k in st.query_params}
    if not ref:
        st.info("Pick an image on the Search page to see it here.")
        st.page_link(SEARCH_PAGE, label="Search", icon=":material/search:")
        return
    record = cat.get(ref)
    if record is None:
        st.warning(f"No image {quoted(ref[:200])} in the catalogue: it may have been deleted.")
        st.page_link(SEARCH_PAGE, label="Search", icon=":material/search:")
        return

    name = record.key or file_name(record.uri)
    summary = record.label_summary(3)
    st.set_page_config(page_title=f"{name} · pixdex")
    before, after = neighbours(cat, record.id, search)
    with st.container(horizontal=True, vertical_alignment="center", key="viewer-nav"):
        if st.button("Results", icon=":material/arrow_back:", shortcut="Esc", help="back to the results (Esc)"):
            st.switch_page(SEARCH_PAGE, query_params=search)
        st.button("Previous", icon=":material/chevron_left:", shortcut="Left", disabled=before is None,
                  on_click=go, args=(before,), help="the image before this one (←)")
        st.button("Next", icon=":material/chevron_right:", shortcut="Right", disabled=after is None,
                  on_click=go, args=(after,), help="the image after this one (→)")
        if search.get("q"):
            st.caption(f"in the results of {quoted(search['q'][:200])}")
    st.title(md(name))
    st.caption(md(record.uri))
    picture, facts = st.columns([3, 2])
    with picture:
        data = thumbnails().get(record.uri, record.etag, PREVIEW_SIDE, square=False)
        if data:
            st.image(data, width="stretch", alt=f"{name}: {summary}" if summary else name)
        else:
            st.warning("No preview: the image cannot be read now (moved, deleted, or no permission).")
    with facts:
        if record.status == Status.FAILED:
            st.error(f"FAILED: {md(record.error)}")
        elif record.status == Status.NOT_CLASSIFIED:
            st.info("Not labelled yet.")
        parents = {p for lb in record.labels for p in lb.parents}
        ranked = record.best_labels(len(record.labels))  # the classifier's and the faces' first, by confidence
        groups = {"Labels": [lb for lb in ranked if lb.name not in parents and lb.source != Source.PROPERTY],
                  "Concepts": [lb for lb in ranked if lb.name in parents and lb.source != Source.PROPERTY],
                  "Properties": [lb for lb in ranked if lb.source == Source.PROPERTY]}
        for title, shown in groups.items():
            if shown:
                st.subheader(title)
            for lb in shown:
                st.progress(min(1.0, lb.confidence), text=f"**{md(lb.name)}** {lb.confidence:.0%} · {lb.source}")
        st.subheader("Details")
        rows = {"status": str(record.status), "size": f"{record.width}×{record.height} px" if record.width else None,
                "format": record.format, "faces": str(len(record.faces)) if record.faces else None,
                "bytes": f"{record.size:,}" if record.size else None,
                "taken": f"{record.taken_at:%Y-%m-%d %H:%M} UTC" if record.taken_at else None,
                "camera": ", ".join(str(x) for x in (
                    record.camera, record.lens, record.focal_length and f"{record.focal_length:g} mm",
                    record.f_number and f"f/{record.f_number:g}", record.iso and f"ISO {record.iso}") if x) or None,
                "location": f"{record.latitude:.5f}, {record.longitude:.5f}" if record.latitude is not None
                and record.longitude is not None else None,
                "modified": f"{record.last_modified:%Y-%m-%d %H:%M} UTC" if record.last_modified else None,
                "indexed": f"{record.indexed_at:%Y-%m-%d %H:%M} UTC", "model": record.model_id,
                "reviewed": f"{record.reviewed_by} {record.reviewed_at:%Y-%m-%d}" if record.reviewed_at else None,
                "id": record.id}
        st.markdown("\n".join(f"- **{k}**: {md(v)}" for k, v in rows.items() if v))

        report()
        with st.expander("Correct the labels", icon=":material/edit:"):
            st.caption("✕ removes one label; what stays and what you add is saved as reviewed, "
                       "and survives relabelling.")
            label_buttons(record, "image")
            add_box(record, "image")
        with st.popover("Delete from the catalogue", icon=":material/delete:"):
            st.caption("Removes the record; the image itself stays where it is.")
            if st.button("Delete", key="delete", type="primary"):
                cat.delete([record.id])
                st.session_state.deleted = record.uri
                st.switch_page(SEARCH_PAGE)

    copies, nearest = copies_section(cat, record)
    st.subheader("Similar images")
    if isinstance(nearest, CatalogError):
        st.caption(f"Not available here: {md(nearest)}")
        return
    similar = [(r, score) for r, score in nearest if r.id not in copies][:SIMILAR_SHOWN]
    alike = [(r, score) for r, score in similar if score >= SIMILAR_CUTOFF]
    if alike:
        grid([r for r, _ in alike], scores=[score for _, score in alike])
    elif similar:
        st.caption(f"None looks alike enough: the closest, {similar[0][1]:.0%}, is under {SIMILAR_CUTOFF:.0%}.")
    elif copies:
        st.caption("None besides the copies above.")
    else:
        st.caption("None yet: no other image labelled by the same model.")


def copies_section(cat, record) -> tuple[set[str], list[tuple] | CatalogError]:
    """"Copies of this photo": the other records of the same bytes, then the resized, re-encoded or
    mirrored ones (cosine >= NEAR_THRESHOLD, indexer.catalog.duplicates). Returns the ids shown and
    the nearest images by embedding (for Similar images), or why there are none."""
    st.subheader("Copies of this photo")
    exact, exact_known = [], False  # a catalogue that fails the copies' query still shows the page
    try:
        with st.spinner("Finding copies and similar images…"):
            exact, exact_known = exact_copies(cat, record, COPIES_SHOWN), True
            nearest: list[tuple] | CatalogError = cat.similar(record.id, k=COPIES_SHOWN + SIMILAR_SHOWN + len(exact))
    except CatalogError as exc:
        nearest = exc
    same = {r.id for r in exact}
    near = [] if isinstance(nearest, CatalogError) else [
        (r, score) for r, score in nearest if score >= NEAR_THRESHOLD and r.id not in same][:COPIES_SHOWN]
    if exact or near:
        st.caption(", ".join(part for part in (
            exact and f"{len(exact)} with the same bytes",
            near and f"{len(near)} resized, re-encoded or mirrored ({NEAR_THRESHOLD:.0%} alike or more)") if part))
        grid([*exact, *(r for r, _ in near)], scores=[1.0] * len(exact) + [score for _, score in near])
    elif not exact_known:
        st.caption(f"Copies cannot be looked up now ({md(str(nearest))}).")
    elif isinstance(nearest, CatalogError):
        st.caption("No other image has the same bytes; near copies are not available here.")
    elif not record.content_hash:
        st.caption("None looks like a copy; exact copies are known once the image is indexed again "
                   "(it was indexed before pixdex took content hashes).")
    else:
        st.caption(f"None: no other image has the same bytes or looks {NEAR_THRESHOLD:.0%} alike or more.")
    return same | {r.id for r, _ in near}, nearest

main()
