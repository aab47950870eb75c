"""Review: a person checks what the model was unsure of. The queue holds images not reviewed yet
that FAILED, are not classified, or whose best label is under the threshold. Each decision is
saved as human labels, which outrank the model's and survive relabelling."""

from __future__ import annotations

import streamlit as st

from indexer.catalog import CatalogError, Query, Sort
from indexer.record import Label, Record, Source, Status
from ui.common import IMAGE_PAGE, catalog, labeller, thumbnails, user

PER_PAGE = 8


@st.cache_resource
def label_parents(model_id: str) -> dict[str, tuple[str, ...]]:
    """Every name the model knows (classes and concepts) -> its parent concepts."""
    taxonomy = labeller().taxonomy
    return {**taxonomy.parents_of, **taxonomy.concept_parents}


def confirmed(record: Record) -> list[Label]:
    """Confirming keeps the model's best specific label and the concepts it belongs to."""
    best = [lb for lb in record.best_labels(1) if lb.source != Source.PROPERTY]  # properties stay as they are
    if not best:
        return []
    top = best[0]
    return [top, *(lb for lb in record.labels if lb.name in top.parents)]


def decide(record: Record, labels: list[Label], what: str) -> None:
    try:
        catalog().review(record.id, labels, user())
    except CatalogError as exc:
        st.session_state.review_error = f"{record.uri}: {exc}"
        return
    st.session_state.reviewed = st.session_state.get("reviewed", 0) + 1
    st.session_state.last = f"{what}: {record.uri.rsplit('/', 1)[-1]}"


def corrected(record: Record, names: list[str], parents: dict[str, tuple[str, ...]]) -> None:
    labels = [Label(n, 1.0, parents=parents.get(n, ())) for n in names]
    decide(record, labels, f"corrected to {', '.join(names)}" if names else "rejected")


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
        st.error(f"Cannot read the review queue: {exc}")
        return
    done = st.session_state.get("reviewed", 0)
    if done + page.total:
        st.progress(done / (done + page.total), text=f"{done} reviewed in this session, {page.total} waiting")
    if msg := st.session_state.pop("last", None):
        st.toast(msg)
    if err := st.session_state.pop("review_error", None):
        st.error(err)
    if page.total == 0:
        st.success("Nothing to review: every image is labelled with confidence, or reviewed.")
        return

    parents = label_parents(labeller().model_id)
    selected = [r for r in page.records if st.session_state.get(f"pick-{r.id}")]
    confirmable = [r for r in selected if r.status == Status.LABELED and r.labels]  # nothing to confirm otherwise
    bulk_confirm, bulk_reject, _ = st.columns([1, 1, 3])
    if bulk_confirm.button(f"Confirm selected ({len(confirmable)})", disabled=not confirmable, key="bulk-confirm",
                           help="Only labelled images: failed and unclassified ones have no label to confirm"):
        for r in confirmable:
            decide(r, confirmed(r), "confirmed")
        st.rerun()
    if bulk_reject.button(f"Reject selected ({len(selected)})", disabled=not selected, key="bulk-reject"):
        for r in selected:
            decide(r, [], "rejected")
        st.rerun()

    for r in page.records:
        with st.container(border=True):
            picture, body = st.columns([1, 4])
            data = thumbnails().get(r.uri, r.etag)
            if data:
                picture.image(data, width="stretch")
            else:
                picture.markdown(":gray[*(no preview)*]")
            with body:
                st.checkbox("select", key=f"pick-{r.id}")
                st.page_link(IMAGE_PAGE, label=r.uri.rsplit("/", 1)[-1], query_params={"id": r.id})
                if r.status == Status.FAILED:
                    st.error(r.error or "FAILED")
                elif r.status == Status.NOT_CLASSIFIED:
                    st.info("Not classified yet")
                else:
                    st.caption("The model says: " + r.label_summary(4, sep=" · "))
                yes, fix, no = st.columns([1, 3, 1])
                yes.button("Confirm", key=f"confirm-{r.id}", disabled=r.status != Status.LABELED,
                           on_click=decide, args=(r, confirmed(r), "confirmed"))
                names = fix.multiselect("Correct labels", sorted(parents), key=f"fix-{r.id}", accept_new_options=True,
                                        placeholder="pick or type the right labels", label_visibility="collapsed")
                fix.button("Save correction", key=f"save-{r.id}", disabled=not names,
                           on_click=corrected, args=(r, names, parents))
                no.button("Reject", key=f"reject-{r.id}", help="No label applies", on_click=decide,
                          args=(r, [], "rejected"))


main()
