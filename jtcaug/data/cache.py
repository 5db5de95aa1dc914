"""On-disk cache of curated ``Flows``, keyed by the source and the curation parameters.

Reading MIRAGE's raw JSON takes minutes; the cache brings a second load down to well under
a second. Every entry carries a SHA-256 of its content: an entry that fails to open or to
verify is reported, deleted and rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jtcaug.data.flows import DatasetError, Flows
from jtcaug.io import atomic_write_with

log = logging.getLogger("jtcaug.data")

# Bump when the curation code or the entry layout changes: old entries then stop matching.
CACHE_FORMAT = 2
_ARRAYS = ("sizes", "directions", "iats", "n_packets", "labels")


def default_cache_dir() -> Path:
    """``$JTCAUG_CACHE``, else ``$XDG_CACHE_HOME/jtcaug``, else ``~/.cache/jtcaug``."""
    if os.environ.get("JTCAUG_CACHE"):
        return Path(os.environ["JTCAUG_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "jtcaug"


def source_signature(path: Path) -> dict:
    """What identifies a source's content: resolved path, sizes and SHA-256 of the bytes.

    Size and mtime alone are not enough: ``cp -p``, ``rsync -t`` and tar extraction restore
    the mtime of a rewritten file. A directory is summarized over every file below it (its
    relative path, size and content hash), so adding, removing or rewriting any capture
    file invalidates the entry.
    """
    path = Path(path).resolve()
    if path.is_file():
        return {"path": str(path), "size": path.stat().st_size, "sha256": _file_sha256(path)}
    digest = hashlib.sha256()
    n_files = 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            size = os.stat(full).st_size
            digest.update(f"{rel}\0{size}\0{_file_sha256(Path(full))}\n".encode())
            n_files += 1
    return {"path": str(path), "files": n_files, "content_sha256": digest.hexdigest()}


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def cache_key(kind: str, params: dict) -> str:
    """Hex key of a cache entry; ``params`` must be JSON-serializable."""
    blob = json.dumps({"format": CACHE_FORMAT, "kind": kind, **params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_flows(
    kind: str,
    params: dict,
    build: Callable[[], Flows],
    *,
    cache_dir: Path | None = None,
    enabled: bool = True,
) -> Flows:
    """Returns the cached ``Flows`` for ``(kind, params)``, building and storing it on a miss.

    Args:
      kind: source kind, part of the file name (``mirage19``, ``tcbench``, ``flows``).
      params: source signature and curation parameters (JSON-serializable).
      build: computes the flows on a miss (or when the entry is corrupt).
      cache_dir: defaults to ``default_cache_dir()``; entries live in ``<dir>/flows/``.
      enabled: False bypasses the cache entirely (no read, no write).
    """
    if not enabled:
        return build()
    path = entry_path(kind, params, cache_dir)
    source = source_identity(kind, params)
    if path.exists():
        try:
            return read_entry(path, source=source)
        except CacheCorrupt as err:
            log.warning("corrupt cache file %s (%s); rebuilding it", path, err)
            path.unlink(missing_ok=True)
    flows = build()
    try:
        write_entry(path, flows, source=source)
    except OSError as err:
        # A read-only or full cache dir must not fail the load that already succeeded.
        log.warning("could not write cache file %s (%s); continuing without it", path, err)
    return flows


def entry_path(kind: str, params: dict, cache_dir: Path | None = None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    safe_kind = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in kind)
    return root / "flows" / f"{safe_kind}-{cache_key(kind, params)[:24]}.npz"


class CacheCorrupt(Exception):
    """A cache entry that cannot be trusted (unreadable, incomplete or checksum mismatch)."""


def source_identity(kind: str, params: dict) -> str:
    """The full key material an entry is built from; recorded in it and compared on a hit,
    so an entry copied over another one's file name is caught."""
    return json.dumps({"kind": kind, **params}, sort_keys=True)


def _meta_of(flows: Flows, source: str | None) -> str:
    return json.dumps(
        {
            "format": CACHE_FORMAT,
            "source": source,
            "class_names": list(flows.class_names),
            "group_names": list(flows.group_names) if flows.groups is not None else None,
            "group_field": flows.group_field,
            "name": flows.name,
            "provenance": flows.provenance,
        },
        sort_keys=True,
    )


def _checksum(arrays: dict[str, np.ndarray], meta: str) -> str:
    digest = hashlib.sha256(meta.encode())
    for key in (*_ARRAYS, "groups"):
        if key not in arrays:
            continue
        arr = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{arr.dtype.str}:{arr.shape}\n".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def write_entry(path: Path, flows: Flows, *, source: str | None = None) -> None:
    """Writes ``flows`` atomically (temp file in the same directory, then ``os.replace``).

    ``source`` is the identity of what the entry was built from (``read_entry`` checks it).
    """
    arrays = {key: getattr(flows, key) for key in _ARRAYS}
    if flows.groups is not None:
        arrays["groups"] = flows.groups
    meta = _meta_of(flows, source)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, **arrays, meta=np.array(meta), checksum=np.array(_checksum(arrays, meta))
            )

    atomic_write_with(path, write)


def read_entry(path: Path, *, source: str | None = None) -> Flows:
    """Reads and verifies one entry; raises ``CacheCorrupt`` on any defect, or when
    ``source`` is given and differs from the identity the entry recorded."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in (*_ARRAYS, "meta", "checksum") if k not in npz.files]
            if missing:
                raise CacheCorrupt(f"missing {', '.join(missing)}")
            arrays = {key: npz[key] for key in _ARRAYS}
            if "groups" in npz.files:
                arrays["groups"] = npz["groups"]
            meta = str(npz["meta"][()])
            stored = str(npz["checksum"][()])
    except CacheCorrupt:
        raise
    except Exception as err:  # zipfile, zlib, numpy format and OS errors alike
        raise CacheCorrupt(f"unreadable: {type(err).__name__}: {err}") from err
    if _checksum(arrays, meta) != stored:
        raise CacheCorrupt("checksum mismatch")
    try:
        info = json.loads(meta)
        if info.get("format") != CACHE_FORMAT:
            raise CacheCorrupt(f"format {info.get('format')} != {CACHE_FORMAT}")
        if source is not None and info.get("source") != source:
            raise CacheCorrupt("entry was built from another source")
        if (info["group_names"] is None) != ("groups" not in arrays):
            raise CacheCorrupt("groups and group names disagree")
        return Flows(
            **arrays,
            group_names=tuple(info["group_names"] or ()),
            group_field=info["group_field"],
            class_names=tuple(info["class_names"]),
            name=info["name"],
            provenance=info["provenance"],
        )
    except (KeyError, TypeError, ValueError, DatasetError) as err:
        raise CacheCorrupt(f"invalid content: {err}") from err
