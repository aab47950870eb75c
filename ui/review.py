"""Review: a person checks what the model was unsure of. The queue holds images not reviewed yet
that FAILED, are not classified, or whose best label is under the threshold. Each decision is
saved as human labels, which outrank the model's and survive relabelling (ui/decisions.py): every
button names what it saves, every action reports the images it changed, and the last one can be
undone."""

from __future__ import annotations

import streamlit as st

from indexer.catalog import CatalogError, Query, Sort
from indexer.record import Status
from ui.common import IMAGE_PAGE, catalog, file_name, md, thumbnails, user
from ui.decisions import Decision, add_box, confirmed, label_buttons, names, report, save

PER_PAGE = 8


def main() -> None:
    cat = catalog()
    st.title("Review")
    if user() is None:
        st.warning("Sign in to review.")
        st.login()
        st.stop()
    below = st.slider("Queue: best label under", 0.05, 1.0, 0.5, 0.05, key="below", bind="query-params",
                      help="Also in the queue: FAILED and not yet classified images. Reviewed images leave it.")
    try:
        page = cat.search(Query(review_below=below, sort=Sort.DATE, limit=PER_PAGE))
    except CatalogError as exc:
        st.error(f"Cannot read the review queue: {md(exc)}")
        return
    done = st.session_state.get("reviewed", 0)
    if done + page.total:
        st.progress(done / (done + page.total), text=f"{done} reviewed in this session, {page.total} waiting")
    report()
    if page.total == 0:
        st.success("Nothing to review: every image is labelled with confidence, or reviewed.")
        return

    selected = [r for r in page.records if st.session_state.get(f"pick-{r.id}")]
    confirmable = [r for r in selected if r.status == Status.LABELED and r.labels]  # nothing to confirm otherwise
    with st.container(horizontal=True, key="bulk"):
        st.button(f"Confirm {len(confirmable)} selected", disabled=not confirmable, key="bulk-confirm",
                  help="Each keeps its best label and its concepts. Only labelled images: failed and "
                       "unclassified ones have no label to confirm",
                  on_click=save, args=([Decision(r, confirmed(r)) for r in confirmable], "confirmed"))
        st.button(f"No label applies to {len(selected)} selected", disabled=not selected, key="bulk-reject",
                  on_click=save, args=([Decision(r, []) for r in selected], "rejected"))

    for r in page.records:
        with st.container(border=True):
            picture, body = st.columns([1, 4])
            data = thumbnails().get(r.uri, r.etag)
            name = file_name(r.uri)
            if data:
                picture.image(data, width="stretch", alt=f"{name}: {r.label_summary(3)}")
            else:
                picture.markdown(":gray[*(no preview)*]")
            with body:
                st.checkbox("select", key=f"pick-{r.id}")
                st.page_link(IMAGE_PAGE, label=md(name), query_params={"id": r.id})
                if r.status == Status.FAILED:
                    st.error(md(r.error or "FAILED"))
                elif r.status == Status.NOT_CLASSIFIED:
                    st.info("Not classified yet")
                else:
                    st.caption("The model says (✕ removes one label):")
                    label_buttons(r, r.id)
                keep = confirmed(r)
                with st.container(horizontal=True, key=f"decide-{r.id}"):
                    st.button(f"Confirm: {md(names(keep))}", key=f"confirm-{r.id}", type="primary",
                              disabled=r.status != Status.LABELED or not keep,
                              on_click=save, args=([Decision(r, keep)], "confirmed"))
                    st.button("No label applies", key=f"reject-{r.id}", help="Saves no label for this image",
                              on_click=save, args=([Decision(r, [])], "rejected"))
                add_box(r, r.id)


main()
