"""The local-folder source: which files to index, their canonical URIs, and their bytes."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlparse

from indexer.images import EXTENSIONS, ImageError, check_size
from indexer.settings import ImageLimits
from indexer.sources.base import Fetched, ObjectMissing, ReadError, SourceItem


def file_uri(path: Path) -> str:
    """Canonical `file:///abs/path` (percent-encoded), the basis of the record id. A symlink loop
    has none: a ReadError (reason "symlink loop") naming the path."""
    try:
        return path.expanduser().resolve().as_uri()
    except RuntimeError:  # Python 3.11 and 3.12 resolve() on a loop; 3.13 resolves as far as it can
        raise _symlink_loop(path) from None


def _symlink_loop(path: Path) -> ReadError:
    return ReadError(f"cannot resolve {path}: a symlink loop", "symlink loop")


def uri_path(uri: str) -> Path:
    """The path of a `file:` URI, byte for byte: a file name that is not UTF-8 (any byte string the
    file system allows) comes back as the same name (os.fsdecode, surrogate escapes)."""
    return Path(os.fsdecode(unquote_to_bytes(urlparse(uri).path)))


def nothing_at(path: Path) -> bool:
    """Nothing is at `path`: not a file out of reach (under a folder that cannot be read), nor a
    symlink loop, which are there and whose read says what is wrong."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        pass
    return False


def find_images(paths: Iterable[Path], on_error: Callable[[Path, OSError], None] | None = None) -> Iterator[Path]:
    """Files named explicitly are taken as they are (a bad one becomes a FAILED record); folders
    are walked recursively for image extensions, skipping hidden files and folders, in path order.
    A folder that cannot be listed (no permission) is passed to `on_error`, never skipped unsaid
    by a caller that gives one."""
    for path in paths:
        try:
            is_dir = path.is_dir()
        except OSError:  # not even its type can be read: the reader names the problem
            is_dir = False
        if not is_dir:
            yield path
            continue
        found = []

        def unlisted(exc: OSError, top: Path = path) -> None:
            if on_error is not None:
                on_error(Path(exc.filename) if exc.filename else top, exc)

        for folder, dirs, files in os.walk(path, onerror=unlisted):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            here = Path(folder)
            found += [here / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in EXTENSIONS]
        yield from sorted(p for p in found if p.is_file())


def source_item(path: Path) -> SourceItem:
    """What is at `path`; raises ReadError for a symlink loop (on every Python, see file_uri)."""
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _symlink_loop(path) from None
        return SourceItem(uri=file_uri(path))  # gone or unreadable: the reader says which
    return SourceItem(
        uri=file_uri(path), size=st.st_size, last_modified=datetime.fromtimestamp(st.st_mtime, UTC)
    )


class FileSource:
    """Reads a file's bytes after checking its size, so an oversize file is never read whole."""

    def __init__(self, limits: ImageLimits) -> None:
        self.limits = limits

    def read(self, item: SourceItem) -> Fetched:
        path = uri_path(item.uri)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ObjectMissing(f"file vanished before it was read: {path}") from None
        except OSError as exc:
            raise ReadError(f"cannot read {path}: {exc.strerror or exc}") from None
        check_size(size, self.limits)  # an ImageError: the file is what it is
        try:
            return Fetched(item, path.read_bytes())
        except IsADirectoryError:
            raise ImageError(f"{path} is a directory, not an image", "a directory") from None
        except FileNotFoundError:
            raise ObjectMissing(f"file vanished before it was read: {path}") from None
        except OSError as exc:
            raise ReadError(f"cannot read {path}: {exc.strerror or exc}") from None

    def head(self, uri: str) -> SourceItem | None:
        path = uri_path(uri)
        return source_item(path) if path.is_file() else None
