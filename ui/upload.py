"""Upload: drop images, see each one labelled in seconds. Kept only with consent: then, on an S3
deployment (PIXDEX_UPLOAD_BUCKET), the image goes to the bucket and the bucket's event path
indexes it; on the embedded default it is saved under PIXDEX_UPLOADS and indexed at once."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import streamlit as st

from indexer.images import EXTENSIONS, ImageError, check_size
from indexer.ingest.pipeline import Pipeline, decode_fetched, label_records
from indexer.record import Record, Status
from indexer.settings import Settings
from indexer.sources.base import Fetched, SourceItem
from indexer.sources.files import FileSource, source_item
from indexer.sources.remote import UrlRefused, fetch_image
from indexer.sources.s3 import split_s3_uri
from ui.common import IMAGE_PAGE, catalog, labeller, md, s3, settings
from ui.thumbnails import THUMB_SIDE, render


def safe_name(name: str) -> str:
    """A file name that cannot climb out of a folder or surprise a shell: letters, digits, . - _"""
    stem = re.sub(r"[^\w.-]+", "-", Path(name).name).strip(".-") or "image"
    return f"{uuid.uuid4().hex[:8]}-{stem[-80:]}"


def label_only(name: str, data: bytes, s: Settings) -> Record:
    """Labelled in memory: nothing is written anywhere."""
    item = SourceItem(uri=f"upload:///{safe_name(name)}", size=len(data))
    model = labeller()
    decoded = decode_fetched(Fetched(item, data), s.limits, model.input_size, model.preview_side)
    return label_records(model, [decoded])[0]


def keep(name: str, data: bytes, s: Settings) -> tuple[Record, str | None]:
    """Stored and indexed; returns the record and where the image went (None: refused, so not
    stored: a file the page calls no image must not turn up in the catalogue as a FAILED record)."""
    if s.upload_bucket:  # the event path labels what lands in the bucket: look first, here
        looked = label_only(name, data, s)
        if looked.status == Status.FAILED:
            return looked, None
        uri = s.upload_uri("uploads", safe_name(name))
        bucket, key = split_s3_uri(uri)
        s3().put_object(Bucket=bucket, Key=key, Body=data)
        return looked, f"{uri}: in the catalogue as soon as its event is processed"
    s.uploads.mkdir(parents=True, exist_ok=True)
    path = s.uploads / safe_name(name)
    path.write_bytes(data)
    item = source_item(path)
    Pipeline(s, labeller(), catalog(), FileSource(s.limits)).run([item])  # labelled once, as it is stored
    record = catalog().get(item.uri)
    if record.status == Status.FAILED:  # refused: taken back, file and record
        catalog().delete([record.id])
        path.unlink(missing_ok=True)
        return record, None
    return record, str(path)


def show(name: str, data: bytes, record: Record, where: str | None, s: Settings) -> None:
    picture, text = st.columns([1, 3])
    try:
        picture.image(render(data, s.limits, THUMB_SIDE, square=True), width="stretch")
    except ImageError:
        picture.markdown(":gray[*(no preview)*]")
    with text:
        st.markdown(f"**{md(name)}**")
        if record.status == Status.FAILED:
            st.error(f"Not an image pixdex can label: {md(record.error)}")
            return
        parents = {p for lb in record.labels for p in lb.parents}
        classes = [lb for lb in record.best_labels(len(record.labels)) if lb.name not in parents][:3]
        concepts = sorted((lb for lb in record.labels if lb.name in parents), key=lambda lb: -lb.confidence)[:3]
        for lb in classes + concepts:
            st.progress(min(1.0, lb.confidence), text=f"**{md(lb.name)}** {lb.confidence:.0%}")
        if where:
            st.success(f"Kept: {where}")
            if not where.startswith("s3://"):
                st.page_link(IMAGE_PAGE, label="Open in the catalogue", query_params={"id": record.id})
        else:
            st.caption("Not kept: neither the image nor its labels were stored.")


def main() -> None:
    s = settings()
    st.title("Upload")
    destination = s.upload_bucket or str(s.uploads)
    mb = max(1, s.limits.max_bytes // 2 ** 20)  # Streamlit's MB are MiB: what it refuses is what we refuse
    files = st.file_uploader("Drop images here", type=sorted(e.lstrip(".") for e in EXTENSIONS),
                             accept_multiple_files=True, key="files", max_upload_size=mb,
                             help=f"Up to {mb} MB each (PIXDEX_LIMITS__MAX_BYTES)")
    url = st.text_input("…or the URL of an image", key="url", placeholder="https://example.com/photo.jpg",
                        help="Fetched by the app: public http(s) addresses only, within the size and time limits")
    kept = st.checkbox("Keep these images in the catalogue", key="keep",
                       help=f"Unchecked: the images are labelled and shown, then forgotten. Checked: stored in "
                            f"{destination} and indexed.")
    items = [(f.file_id, f.name, f.getvalue) for f in files or []]
    if url.strip():
        fetched = st.session_state.setdefault("fetched", {})  # a URL is fetched once per session
        if url.strip() not in fetched:
            try:
                with st.spinner(f"Fetching {url.strip()}…"):
                    fetched[url.strip()] = fetch_image(url.strip(), s.limits, s.url_timeout, frozenset(s.url_allow))
            except UrlRefused as exc:
                fetched[url.strip()] = exc
        got = fetched[url.strip()]
        if isinstance(got, UrlRefused):
            st.error(f"Not fetched: {md(got)}")
        else:
            items.append((f"url:{got.url}", got.name, lambda got=got: got.data))
    if not items:
        st.caption(f"Images are labelled in seconds. With the box checked they are kept in {destination}.")
        return
    for file_id, name, read in items:
        data = read()
        with st.spinner(f"Labelling {name}…"):
            try:
                check_size(len(data), s.limits)
            except ImageError as exc:
                st.error(f"{md(name)}: {md(exc)}")
                continue
            done = st.session_state.setdefault("done", {})
            if file_id in done and (done[file_id][2] == kept or done[file_id][2]):
                record, where, _ = done[file_id]  # a rerun: not labelled or stored twice; kept stays kept
            elif kept:
                record, where = keep(name, data, s)
                done[file_id] = (record, where, kept)
            else:
                record, where = label_only(name, data, s), None
                done[file_id] = (record, where, kept)
        show(name, data, record, where, s)


main()
