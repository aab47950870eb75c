"""One image: the picture, every label with its confidence and source, parent concepts, metadata,
status, and images that look alike. Reached with ?id=<record id>."""

from __future__ import annotations

import streamlit as st

from indexer.catalog import CatalogError
from indexer.record import Status
from ui.common import SEARCH_PAGE, catalog, grid, thumbnails
from ui.thumbnails import PREVIEW_SIDE


def main() -> None:
    cat = catalog()
    ref = st.query_params.get("id")
    if not ref:
        st.info("Pick an image on the Search page to see it here.")
        st.page_link(SEARCH_PAGE, label="Search", icon=":material/search:")
        return
    record = cat.get(ref)
    if record is None:
        st.warning(f"No image {ref!r} in the catalogue: it may have been deleted.")
        st.page_link(SEARCH_PAGE, label="Search", icon=":material/search:")
        return

    st.title(record.key or record.uri.rsplit("/", 1)[-1])
    st.caption(record.uri)
    picture, facts = st.columns([3, 2])
    with picture:
        data = thumbnails().get(record.uri, record.etag, PREVIEW_SIDE, square=False)
        if data:
            st.image(data, width="stretch")
        else:
            st.warning("No preview: the image cannot be read now (moved, deleted, or no permission).")
    with facts:
        if record.status == Status.FAILED:
            st.error(f"FAILED: {record.error}")
        elif record.status == Status.NOT_CLASSIFIED:
            st.info("Not labelled yet.")
        st.subheader("Labels")
        parents = {p for lb in record.labels for p in lb.parents}
        for lb in sorted(record.labels, key=lambda lb: -lb.confidence):
            if lb.name in parents:
                continue  # shown with the concepts below
            st.progress(min(1.0, lb.confidence), text=f"**{lb.name}** {lb.confidence:.0%} · {lb.source}")
        concepts = sorted((lb for lb in record.labels if lb.name in parents), key=lambda lb: -lb.confidence)
        if concepts:
            st.subheader("Concepts")
            for lb in concepts:
                st.progress(min(1.0, lb.confidence), text=f"**{lb.name}** {lb.confidence:.0%} · {lb.source}")
        st.subheader("Details")
        rows = {"status": str(record.status), "size": f"{record.width}×{record.height} px" if record.width else None,
                "format": record.format, "bytes": f"{record.size:,}" if record.size else None,
                "modified": f"{record.last_modified:%Y-%m-%d %H:%M} UTC" if record.last_modified else None,
                "indexed": f"{record.indexed_at:%Y-%m-%d %H:%M} UTC", "model": record.model_id,
                "reviewed": f"{record.reviewed_by} {record.reviewed_at:%Y-%m-%d}" if record.reviewed_at else None,
                "id": record.id}
        st.markdown("\n".join(f"- **{k}**: `{v}`" for k, v in rows.items() if v))

        with st.popover("Delete from the catalogue", icon=":material/delete:"):
            st.caption("Removes the record; the image itself stays where it is.")
            if st.button("Delete", key="delete", type="primary"):
                cat.delete([record.id])
                st.session_state.deleted = record.uri
                st.switch_page(SEARCH_PAGE)

    st.subheader("Similar images")
    try:
        with st.spinner("Finding similar images…"):
            similar = cat.similar(record.id, k=8)
    except CatalogError as exc:
        st.caption(f"Not available here: {exc}")
        return
    if similar:
        grid([r for r, _ in similar])
    else:
        st.caption("None yet: no other image labelled by the same model.")


main()
