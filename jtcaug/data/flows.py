"""The in-memory form every dataset source is read into, and ragged-array helpers.

A ``Flows`` holds the first ``T_max`` packets of every flow as dense, zero-padded arrays plus
each flow's true packet count; readers build it from flat per-packet arrays and offsets, so
no reader loops over packets in Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from jtcaug import T_DEFAULT

# Readers keep this many leading packets per flow unless told otherwise: MIRAGE-19 stores the
# first 32 packets of a biflow, and anything past T = 20 only matters to future experiments.
T_MAX_DEFAULT = 32
# Sizes are stored as float32; anything at or above this is no packet size (an IPv6
# jumbogram tops out at 2**32 - 1 bytes) and would overflow or lose meaning in the cast.
MAX_PACKET_BYTES = 2.0**32


class DatasetError(ValueError):
    """A dataset that cannot be found, read or used; the message names the culprit."""


def parse_json(data: bytes | str, where: str):
    """``json.loads`` whose errors become a one-line ``DatasetError`` naming ``where``.

    Python's parser accepts NaN: real MIRAGE captures hold it in ``flow_features``, so
    callers reject it only in the fields they use.
    """
    try:
        return json.loads(data)
    except json.JSONDecodeError as err:
        raise DatasetError(
            f"{where}: malformed or truncated JSON (line {err.lineno}, column {err.colno}): "
            f"{err.msg}"
        ) from err
    except (UnicodeDecodeError, ValueError) as err:
        raise DatasetError(f"{where}: malformed JSON: {err}") from err
    except RecursionError as err:
        # The C decoder recurses once per nesting level; no flow record nests this deep.
        raise DatasetError(f"{where}: JSON nested too deeply to be a flow record") from err


@dataclass(frozen=True, eq=False)
class Flows:
    """Per-flow packet series of one dataset, in one form for every source.

    Attributes:
      sizes: ``(N, T_max)`` float32 packet sizes in bytes (MIRAGE/tcbench: L4 payload);
        0 past the flow's stored packets.
      directions: ``(N, T_max)`` int8, +1 client to server, -1 server to client, 0 = no packet.
        Real packets form a prefix: after the first 0 every position is 0.
      iats: ``(N, T_max)`` float64 seconds since the previous packet of the flow (first 0).
      n_packets: ``(N,)`` int64 true packet count of the flow as the source knows it (after
        curation); it may exceed ``T_max`` (then only the first ``T_max`` are stored).
      labels: ``(N,)`` int32 class ids in ``[0, len(class_names))``.
      class_names: the name of each class id.
      name: short, path-free dataset name (``mirage19``, ``synthetic-mirage19``, ...); part of
        the identity that seeds the folds.
      provenance: JSON-ready description of the source and its curation.
      groups: ``(N,)`` int32 group id of every flow (a capture file, session or device) in
        ``[0, len(group_names))``, or None. When set, folds keep each group in one part.
      group_names: the name of each group id.
      group_field: what the groups are (``capture_file``, a table field, ...).
      splits: predefined folds (tcbench's split file): per fold, ``(train, val, test)``
        int64 row indices; None = folds are drawn (``folds.make_fold``).
    """

    sizes: np.ndarray
    directions: np.ndarray
    iats: np.ndarray
    n_packets: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str
    provenance: dict = field(default_factory=dict)
    groups: np.ndarray | None = None
    group_names: tuple[str, ...] = ()
    group_field: str | None = None
    splits: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...] | None = None

    def __post_init__(self) -> None:
        coerce = {
            "sizes": np.float32,
            "directions": np.int8,
            "iats": np.float64,
            "n_packets": np.int64,
            "labels": np.int32,
        }
        for attr, dtype in coerce.items():
            object.__setattr__(self, attr, np.ascontiguousarray(getattr(self, attr), dtype))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if self.groups is not None:
            object.__setattr__(self, "groups", np.ascontiguousarray(self.groups, np.int32))
            object.__setattr__(self, "group_names", tuple(str(g) for g in self.group_names))
        _check_flows(self)

    @property
    def n_flows(self) -> int:
        return int(self.labels.shape[0])

    @property
    def t_max(self) -> int:
        return int(self.sizes.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def lengths(self) -> np.ndarray:
        """``(N,)`` int64 number of stored packets, ``min(n_packets, T_max)``."""
        return np.count_nonzero(self.directions, axis=1).astype(np.int64)

    def class_counts(self) -> np.ndarray:
        """``(C,)`` int64 flows per class."""
        return np.bincount(self.labels, minlength=self.n_classes).astype(np.int64)

    def subset(self, index: np.ndarray) -> Flows:
        """The flows at ``index`` (int array or bool mask), same classes, groups and name;
        predefined splits do not carry over (their indices refer to the whole set)."""
        return Flows(
            sizes=self.sizes[index],
            directions=self.directions[index],
            iats=self.iats[index],
            n_packets=self.n_packets[index],
            labels=self.labels[index],
            class_names=self.class_names,
            name=self.name,
            provenance=self.provenance,
            groups=None if self.groups is None else self.groups[index],
            group_names=self.group_names,
            group_field=self.group_field,
        )

    def with_groups(
        self, groups: np.ndarray | None, group_names: Sequence[str] = (), field: str | None = None
    ) -> Flows:
        """The same flows with other (or no) groups."""
        return dataclasses.replace(
            self, groups=groups, group_names=tuple(group_names), group_field=field
        )

    def with_splits(self, splits) -> Flows:
        """The same flows with predefined ``(train, val, test)`` splits (or None)."""
        return dataclasses.replace(self, splits=splits)

    def group_counts(self) -> np.ndarray:
        """``(C,)`` int64 distinct groups per class (0 everywhere without groups)."""
        out = np.zeros(self.n_classes, np.int64)
        if self.groups is not None and self.n_flows:
            pairs = np.unique(np.stack([self.labels, self.groups]), axis=1)
            out += np.bincount(pairs[0], minlength=self.n_classes)
        return out

    @cached_property
    def identity(self) -> str:
        """Stable identity for seeding folds: the name plus a hash of the labels.

        Only the labels and class names enter the hash: the stratified split depends on
        nothing else, and a tiny numeric change in the features (another float summation
        order, say) must not reshuffle the folds.
        """
        digest = hashlib.sha256()
        digest.update(self.name.encode())
        digest.update(json.dumps(list(self.class_names)).encode())
        digest.update(self.labels.astype("<i4").tobytes())
        if self.groups is not None:
            # Grouped folds depend on the groups too; ungrouped identities stay as they were.
            digest.update(f"groups:{self.group_field}".encode())
            digest.update(self.groups.astype("<i4").tobytes())
        return f"{self.name}:{digest.hexdigest()[:16]}"

    def summary(self) -> dict:
        """The paper's Table 4 columns plus per-class counts, JSON-ready."""
        counts = self.class_counts()
        present = counts[counts > 0]
        n_min = int(present.min()) if present.size else 0
        n_max = int(present.max()) if present.size else 0
        return {
            "dataset": self.name,
            "classes": self.n_classes,
            "flows": self.n_flows,
            "min_flows_per_class": n_min,
            "max_flows_per_class": n_max,
            "rho": (n_max / n_min) if n_min else float("nan"),
            "mean_packets_per_flow": float(self.n_packets.mean()) if self.n_flows else 0.0,
            "t_max": self.t_max,
            "per_class": {name: int(c) for name, c in zip(self.class_names, counts, strict=True)},
            **self._group_summary(),
            **({"predefined_splits": len(self.splits)} if self.splits is not None else {}),
        }

    def _group_summary(self) -> dict:
        if self.groups is None:
            return {}
        per_class = self.group_counts()
        return {
            "group_field": self.group_field,
            "groups": len(self.group_names),
            "groups_per_class": {
                name: int(c) for name, c in zip(self.class_names, per_class, strict=True)
            },
        }


def _check_flows(f: Flows) -> None:
    """Structural invariants; violations are reader bugs or bad input, never silently kept."""
    n, t_max = f.sizes.shape if f.sizes.ndim == 2 else (-1, -1)
    if f.sizes.ndim != 2 or f.directions.shape != f.sizes.shape or f.iats.shape != f.sizes.shape:
        raise DatasetError(
            f"{f.name}: sizes/directions/iats must share one (N, T_max) shape, got "
            f"{f.sizes.shape}, {f.directions.shape}, {f.iats.shape}"
        )
    if t_max < T_DEFAULT:
        raise DatasetError(f"{f.name}: T_max must be >= {T_DEFAULT}, got {t_max}")
    if f.n_packets.shape != (n,) or f.labels.shape != (n,):
        raise DatasetError(
            f"{f.name}: n_packets {f.n_packets.shape} and labels {f.labels.shape} must be ({n},)"
        )
    if not (np.isfinite(f.sizes).all() and np.isfinite(f.iats).all()):
        raise DatasetError(f"{f.name}: sizes and iats must be finite")
    if (f.sizes < 0).any() or (f.iats < 0).any():
        raise DatasetError(f"{f.name}: sizes and iats must be >= 0")
    if not np.isin(f.directions, (-1, 0, 1)).all():
        raise DatasetError(f"{f.name}: directions must be +1, -1 or 0")
    present = f.directions != 0
    if (present[:, 1:] & ~present[:, :-1]).any():
        raise DatasetError(f"{f.name}: packets must form a prefix (a gap of direction 0 found)")
    if ((f.sizes != 0) & ~present).any() or ((f.iats != 0) & ~present).any():
        raise DatasetError(f"{f.name}: padding positions (direction 0) must be all-zero")
    stored = present.sum(axis=1)
    if n and ((stored < 1).any() or (f.n_packets < stored).any()):
        raise DatasetError(f"{f.name}: every flow needs >= 1 packet and n_packets >= stored ones")
    if n and (f.labels.min() < 0 or f.labels.max() >= len(f.class_names)):
        raise DatasetError(f"{f.name}: labels must lie in [0, {len(f.class_names)})")
    if f.groups is not None:
        if f.groups.shape != (n,):
            raise DatasetError(f"{f.name}: groups {f.groups.shape} must be ({n},)")
        if n and (f.groups.min() < 0 or f.groups.max() >= len(f.group_names)):
            raise DatasetError(f"{f.name}: group ids must lie in [0, {len(f.group_names)})")


def flows_from_flat(
    *,
    sizes: np.ndarray,
    directions: np.ndarray,
    iats: np.ndarray,
    offsets: np.ndarray,
    n_packets: np.ndarray | None,
    labels: np.ndarray,
    class_names: Sequence[str],
    name: str,
    provenance: dict,
    t_max: int = T_MAX_DEFAULT,
    groups: np.ndarray | None = None,
    group_names: Sequence[str] = (),
    group_field: str | None = None,
) -> Flows:
    """Builds ``Flows`` from flat per-packet arrays of ragged flows.

    Args:
      sizes, directions, iats: ``(P,)`` the packets of all flows back to back; directions
        already +1/-1.
      offsets: ``(N + 1,)`` flow ``i`` owns packets ``offsets[i]:offsets[i + 1]``.
      n_packets: ``(N,)`` true counts, or None to use the flat lengths.
      labels: ``(N,)`` class ids.
      groups, group_names, group_field: optional ``(N,)`` group ids and their meaning.
    """
    lengths = np.diff(offsets)
    if n_packets is None:
        n_packets = lengths
    return Flows(
        sizes=pad_ragged(sizes, offsets, t_max, np.float32),
        directions=pad_ragged(directions, offsets, t_max, np.int8),
        iats=pad_ragged(iats, offsets, t_max, np.float64),
        n_packets=n_packets,
        labels=labels,
        class_names=tuple(class_names),
        name=name,
        provenance=provenance,
        groups=groups,
        group_names=tuple(group_names),
        group_field=group_field,
    )


def pad_ragged(flat: np.ndarray, offsets: np.ndarray, t_max: int, dtype) -> np.ndarray:
    """``(N, t_max)`` array of the first ``t_max`` values of each segment, zero-padded."""
    offsets = np.asarray(offsets, np.int64)
    n = len(offsets) - 1
    lengths = np.minimum(np.diff(offsets), t_max)
    out = np.zeros((n, t_max), dtype)
    pos = np.arange(t_max)
    take = pos[None, :] < lengths[:, None]
    src = offsets[:-1, None] + pos[None, :]
    out[take] = np.asarray(flat)[src[take]]
    return out


def segment_ids(offsets: np.ndarray) -> np.ndarray:
    """``(P,)`` flow index of every flat packet."""
    lengths = np.diff(np.asarray(offsets, np.int64))
    return np.repeat(np.arange(len(lengths)), lengths)


def first_bad_segment(bad: np.ndarray, offsets: np.ndarray) -> int | None:
    """Index of the first flow owning a True entry of the flat mask ``bad``, or None."""
    hits = np.flatnonzero(bad)
    if hits.size == 0:
        return None
    return int(np.searchsorted(offsets, hits[0], side="right") - 1)


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` over the pairs, without a Python loop."""
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    seg_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(np.asarray(starts, np.int64), lengths) + (np.arange(total) - seg_start)
