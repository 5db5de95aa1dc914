"""Fetching the public MIRAGE archives: resumable download, verification, safe extraction.

``fetch`` streams into ``<file>.part`` and resumes it with an HTTP ``Range`` request; the
finished file is hashed (SHA-256) and checked against the expected size / hash where known,
then renamed into place. ``extract`` unpacks into a temp folder inside the root (refusing
absolute paths, ``..``, links leaving the root and device files), unpacks nested zips
(MIRAGE-22's per-app archives) and only then moves the result into place.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from jtcaug.data.cache import default_cache_dir
from jtcaug.data.flows import DatasetError
from jtcaug.data.mirage import ARCHIVE_NAME

BASE_URL = "https://traffic.comics.unina.it/mirage/MIRAGE/"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """A public archive; size / sha256 are None where the publisher gives no value.

    Then the SHA-256 of the first download is recorded beside the archive
    (``<archive>.sha256``) and every later download or load of the archive is checked
    against it (trust on first use); a pinned value here always wins over the record.
    """

    url: str
    file_name: str
    size: int | None = None
    sha256: str | None = None


# The MIRAGE pages (traffic.comics.unina.it/mirage) publish no checksum or size for either
# archive, so none is pinned: the first download records its hash.
SOURCES = {
    name: Source(url=BASE_URL + ARCHIVE_NAME[name], file_name=ARCHIVE_NAME[name])
    for name in ("mirage19", "mirage22")
}
MISMATCH_SUFFIX = ".sha256-mismatch"


def default_data_root() -> Path:
    """Where ``download`` puts datasets by default: ``<cache dir>/datasets``."""
    return default_cache_dir() / "datasets"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    url: str,
    dest: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = False,
    timeout: float = 60.0,
) -> str:
    """Downloads ``url`` to ``dest`` (resuming ``dest.part``); returns the file's SHA-256.

    An existing ``dest`` is only verified. A transfer that stops early keeps ``.part`` for
    the next call; a complete file with the wrong size or hash is deleted and reported.
    """
    dest = Path(dest)
    if dest.exists():
        return _verify(dest, size, sha256, keep=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "jtcaug-download"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset and (size is None or offset == size):
            # Nothing left to send: the partial file already holds everything.
            return _finish(part, dest, size, sha256)
        raise DatasetError(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise DatasetError(f"cannot reach {url}: {reason}") from err

    with response:
        status = getattr(response, "status", 200)
        if offset and status == 206 and _range_start(response) == offset:
            mode = "ab"
        else:
            # The server ignored the Range request: start over.
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else size
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name)
        written = offset
        try:
            with open(part, mode) as fh:
                while chunk := response.read(CHUNK):
                    fh.write(chunk)
                    written += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as err:
            raise DatasetError(
                f"download of {url} interrupted after {written} bytes ({err}); "
                "run the same command again to resume"
            ) from err
        finally:
            if bar is not None:
                bar.close()
    if total is not None and written < total:
        raise DatasetError(
            f"download of {url} stopped at {written} of {total} bytes; "
            "run the same command again to resume"
        )
    return _finish(part, dest, size, sha256)


def _range_start(response) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _finish(part: Path, dest: Path, size: int | None, sha256: str | None) -> str:
    digest = _verify(part, size, sha256, keep=False)
    os.replace(part, dest)
    return digest


def _verify(path: Path, size: int | None, sha256: str | None, *, keep: bool) -> str:
    """Checks size and hash; a mismatch deletes a fresh download, or sets aside a file that
    was already in place (``keep``), so that it is never used again."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        where = _set_aside(path) if keep else path.unlink()
        raise DatasetError(
            f"{path}: size {actual_size} bytes, expected {size}"
            + (f"; moved aside to {where}, not used" if where else "")
        )
    digest = sha256_of(path)
    if sha256 is not None and digest != sha256.lower():
        where = _set_aside(path) if keep else path.unlink()
        raise DatasetError(
            f"{path}: SHA-256 {digest}, expected {sha256.lower()}"
            + (f"; moved aside to {where}, not used" if where else "")
        )
    return digest


def _set_aside(path: Path) -> Path:
    aside = path.with_name(path.name + MISMATCH_SUFFIX)
    os.replace(path, aside)
    return aside


def sidecar_of(archive: Path) -> Path:
    return Path(archive).with_name(Path(archive).name + ".sha256")


def expected_sha256(archive: Path) -> tuple[str | None, str]:
    """The SHA-256 ``archive`` must have and where it comes from: pinned in ``SOURCES``,
    else recorded on first download (``<archive>.sha256``), else ``(None, "none")``."""
    archive = Path(archive)
    for source in SOURCES.values():
        if source.file_name == archive.name and source.sha256:
            return source.sha256.lower(), "pinned"
    sidecar = sidecar_of(archive)
    if sidecar.is_file():
        words = sidecar.read_text(errors="replace").split()
        if words and len(words[0]) == 64:
            return words[0].lower(), "recorded on first download"
    return None, "none"


def verify_archive(archive: Path, actual: str | None = None) -> str | None:
    """Checks a known archive before it is read; a mismatch sets the file aside.

    ``actual``: the file's SHA-256 if already computed. Returns the expected hash (None
    where nothing is pinned or recorded).
    """
    expected, origin = expected_sha256(archive)
    if expected is None:
        return None
    actual = actual or sha256_of(archive)
    if actual != expected:
        aside = _set_aside(Path(archive))
        raise DatasetError(
            f"{archive}: SHA-256 {actual} does not match the {origin} {expected}; moved "
            f"aside to {aside}, not used (download it again)"
        )
    return expected


# ---------------------------------------------------------------------------------------------
# Extraction.


def extract(archive: Path, root: Path, *, nested: bool = True) -> list[Path]:
    """Safely unpacks ``archive`` (``.tar.gz``/``.tgz``/``.tar``/``.zip``) into ``root``.

    With ``nested``, zips found inside are unpacked into a folder named after them and
    removed (the outer archive still holds them). Existing top-level entries of ``root`` are
    never overwritten: an entry already present is an error. Returns the new entries.
    """
    archive, root = Path(archive), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        _extract_any(archive, staging)
        if nested:
            while inner := sorted(p for p in staging.rglob("*.zip") if p.is_file()):
                for zip_path in inner:
                    _extract_zip(zip_path, zip_path.with_suffix(""))
                    zip_path.unlink()
        entries = sorted(staging.iterdir())
        clashes = [str(root / e.name) for e in entries if (root / e.name).exists()]
        if clashes:
            raise DatasetError(
                f"refusing to overwrite existing {', '.join(clashes)}; move it away first"
            )
        for entry in entries:
            os.replace(entry, root / entry.name)
        return [root / e.name for e in entries]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_any(archive: Path, dest: Path) -> None:
    name = archive.name
    if name.endswith(".zip"):
        _extract_zip(archive, dest)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            with tarfile.open(archive, mode="r|*") as tar:
                for member in tar:
                    _check_member_name(archive, member.name)
                    # The "data" filter also rejects links that leave the destination and
                    # device files.
                    tar.extract(member, dest, filter="data")
        except tarfile.FilterError as err:
            raise DatasetError(f"{archive}: unsafe archive member: {err}") from err
        except (tarfile.TarError, EOFError, OSError) as err:
            raise DatasetError(f"{archive}: unreadable or truncated archive: {err}") from err
    else:
        raise DatasetError(f"{archive}: cannot extract: expected .tar.gz, .tgz, .tar or .zip")


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member_name(archive, info.filename)
            dest.mkdir(parents=True, exist_ok=True)
            # zipfile never creates links: a symlink entry becomes a small regular file.
            zf.extractall(dest)
    except zipfile.BadZipFile as err:
        raise DatasetError(f"{archive}: not a valid zip archive: {err}") from err


def _check_member_name(archive: Path, name: str) -> None:
    """Absolute names and ``..`` are refused outright rather than silently rewritten."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DatasetError(f"{archive}: unsafe archive member {name!r} (leaves the target)")


def download_dataset(
    name: str,
    root: Path | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    do_extract: bool = True,
    progress: bool = False,
) -> dict:
    """Downloads (and extracts) ``mirage19`` / ``mirage22`` under ``<root>/<name>/``.

    Returns ``{archive, sha256, sha256_origin, size, extracted}``. Where no hash is pinned
    or recorded yet, this download's hash is written to ``<archive>.sha256``; every later
    download and every load of the archive must match it.
    """
    if name not in SOURCES:
        raise DatasetError(
            f"unknown downloadable dataset {name!r}; expected one of {sorted(SOURCES)}"
        )
    source = SOURCES[name]
    folder = Path(root if root is not None else default_data_root()) / name
    archive = folder / source.file_name
    expected, origin = expected_sha256(archive)
    if sha256 is not None and expected is not None and sha256.lower() != expected:
        raise DatasetError(
            f"--sha256 {sha256.lower()} differs from the {origin} {expected} of {archive}"
        )
    digest = fetch(
        url or source.url,
        archive,
        size=source.size if url is None else None,
        sha256=sha256 or expected,
        progress=progress,
    )
    if expected is None:
        origin = "given with --sha256" if sha256 else "recorded now: the publisher gives none"
        sidecar = sidecar_of(archive)
        tmp = sidecar.with_name(sidecar.name + ".tmp")
        tmp.write_text(f"{digest}  {archive.name}\n")
        os.replace(tmp, sidecar)
    extracted: list[Path] = []
    if do_extract:
        from jtcaug.data.mirage import EXTRACTED_DIR

        if (folder / EXTRACTED_DIR[name]).exists():
            extracted = [folder / EXTRACTED_DIR[name]]
        else:
            extracted = extract(archive, folder)
    return {
        "archive": str(archive),
        "sha256": digest,
        "sha256_origin": origin,
        "size": archive.stat().st_size,
        "extracted": [str(p) for p in extracted],
    }
