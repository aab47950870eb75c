"""A person's decisions about labels, shared by the Review page and the image page: confirm what
the model said, remove one label, add or correct labels, reject all. Each is saved through
`Catalog.review` as human labels (they outrank the model's and survive relabelling), every image
it changed is reported by name, and the last action can be undone."""

from __future__ import annotations

from dataclasses import dataclass, replace

import streamlit as st

from indexer.catalog import CatalogError
from indexer.record import Label, Record, Source
from ui.common import catalog, file_name, labeller, md, user, words

SHOWN_NAMES = 3  # labels named on a button before "+N more"
MAX_LABEL = 100  # characters in a label a person adds (a search takes 1000 characters in all)


@dataclass(frozen=True)
class Decision:
    record: Record
    labels: list[Label]  # what the image's labels become (properties are kept by Catalog.review)


@st.cache_resource
def label_parents(model_id: str) -> dict[str, tuple[str, ...]]:
    """Every name the model knows (classes and concepts) -> its parent concepts."""
    taxonomy = labeller().taxonomy
    return {**taxonomy.parents_of, **taxonomy.concept_parents}


def parents() -> dict[str, tuple[str, ...]]:
    return label_parents(labeller().model_id)


def judged(record: Record) -> list[Label]:
    """The labels a person decides on: all but the properties (facts of the pixels, kept as they are)."""
    return [lb for lb in record.best_labels(len(record.labels)) if lb.source != Source.PROPERTY]


def confirmed(record: Record) -> list[Label]:
    """Confirming keeps the classifier's best specific label with the concepts it belongs to, and
    what the face detector found (person, people, ...: another question than what the photo shows)."""
    labels = judged(record)
    faces = [lb for lb in labels if lb.source == Source.FACES]
    best = [lb for lb in labels if lb.source != Source.FACES][:1]
    if not best:
        return faces
    top = best[0]
    return [top, *(lb for lb in labels if lb.name in top.parents and lb.source != Source.FACES), *faces]


def without(record: Record, name: str) -> list[Label]:
    """The labels once `name` is removed, and with it what it is a concept of (no `cat` left
    behind an `Egyptian cat` that would still find the image as a cat)."""
    return [lb for lb in judged(record) if lb.name != name and name not in lb.parents]


def added(record: Record, typed: str) -> list[Label]:
    """The labels with the typed ones (comma-separated, read through the vocabulary) added."""
    known = parents()
    names = [words().resolve(w) for w in typed.split(",") if w.strip() and len(w.strip()) <= MAX_LABEL]
    have = {lb.name for lb in judged(record)}
    extra = [Label(n, 1.0, parents=known.get(n, ())) for n in dict.fromkeys(names) if n not in have]
    return [*judged(record), *extra]


def names(labels: list[Label]) -> str:
    shown = [lb.name for lb in labels[:SHOWN_NAMES]]
    more = f" +{len(labels) - SHOWN_NAMES} more" if len(labels) > SHOWN_NAMES else ""
    return ", ".join(shown) + more if shown else "no label"


def save(decisions: list[Decision], what: str) -> None:
    """Save each decision; remember the records as they were (for undo) and what changed (the report)."""
    cat = catalog()
    before, changed, failed = [], [], []
    for d in decisions:
        try:
            old = cat.get(d.record.id)  # whole, with its embedding: what undo writes back
            if old is not None and old.labels != d.record.labels:
                # another tab or person decided meanwhile: this decision was made on labels that are gone
                failed.append(f"{d.record.uri}: its labels changed since this page showed them (another tab or "
                              "reviewer): not saved, look again and decide on what it has now")
                continue
            cat.review(d.record.id, d.labels, user())
        except CatalogError as exc:
            failed.append(f"{d.record.uri}: {exc}")
            continue
        before.append(old)
        changed.append(f"{file_name(d.record.uri)}: {names(d.labels)}")
    st.session_state.decision_report = (what, changed, failed)
    st.session_state.reviewed = st.session_state.get("reviewed", 0) + len(changed)  # the Review page's count
    if before:
        st.session_state.undo_last = (what, before)


def undo() -> None:
    what, before = st.session_state.pop("undo_last")
    try:
        # exactly as they were, reviews included or not; no sequencer: the key keeps the one applied
        # (the record's own is not newer than itself, so written with it the undo would be dropped)
        written = catalog().upsert_many([replace(r, sequencer=None) for r in before], keep_reviews=False)
    except CatalogError as exc:
        st.session_state.decision_report = ("undo", [], [str(exc)])
        return
    if written < len(before):
        st.session_state.decision_report = ("undo", [], [f"{len(before) - written} of {len(before)} images could "
                                                          "not be written back"])
        return
    st.session_state.reviewed = max(0, st.session_state.get("reviewed", 0) - len(before))
    names_ = [file_name(r.uri) for r in before]
    st.session_state.decision_report = (f"undid {what}", names_, [])


def report() -> None:
    """What the last action changed, image by image, and its Undo button."""
    got = st.session_state.pop("decision_report", None)
    if got:
        what, changed, failed = got
        if changed:
            st.success(f"{md(what.capitalize())}, {len(changed)} image{'s' if len(changed) != 1 else ''}:\n"
                       + "\n".join(f"- {md(line)}" for line in changed))
        for line in failed:
            st.error(f"Not saved: {md(line)}")
    if "undo_last" in st.session_state:
        what, before = st.session_state.undo_last
        st.button(f"Undo: {md(what)} ({len(before)} image{'s' if len(before) != 1 else ''})", icon=":material/undo:",
                  key="undo", on_click=undo)


def label_buttons(record: Record, key: str) -> None:
    """One button per label that removes just that label."""
    with st.container(horizontal=True, key=f"labels-{key}"):
        for lb in judged(record):
            st.button(f"{md(lb.name)} {lb.confidence:.0%}  ✕", key=f"remove-{key}-{lb.name}",
                      help=f"Remove {md(lb.name)}; the other labels stay, saved as reviewed",
                      on_click=save, args=([Decision(record, without(record, lb.name))], f"removed {lb.name}"))


def add_box(record: Record, key: str) -> None:
    """Type labels (comma-separated) and save them added to the image's."""
    box, button = st.columns([3, 2], vertical_alignment="bottom")
    typed = box.text_input("Add labels", key=f"add-{key}", placeholder="space shuttle, rocket",
                           help="comma-separated; words are read like the search box's (plurals, synonyms)")
    new = [lb for lb in added(record, typed) if lb.name not in {j.name for j in judged(record)}] if typed else []
    if any(len(w.strip()) > MAX_LABEL for w in typed.split(",")):
        box.caption(f"A label is at most {MAX_LABEL} characters; longer ones are left out.")
    button.button(f"Add: {md(names(new))}" if new else "Add", key=f"save-{key}", disabled=not new,
                  on_click=save, args=([Decision(record, added(record, typed))], f"added {names(new)}"))
