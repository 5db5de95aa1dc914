"""Field mappings of flow tables and the named layouts of the field's exports.

A ``FieldMapping`` says which record field holds what, in which unit, and how sequences are
padded; a layout (``--layout NAME``) is a complete mapping of a known export:

==============  ==========================================================================
layout          fields it expects
==============  ==========================================================================
``jtcaug``      ``label``, ``size`` (bytes), ``direction`` (+1/-1), ``iat`` (s): what
                ``python -m jtcaug.data from-pcap`` writes; also ``capture_file``,
                ``flow_id`` and the 5-tuple (usable as ``--group-field``).
``nfstream``    ``label``, ``splt_ps`` (bytes), ``splt_direction`` (0 = client to server,
                1 = back), ``splt_piat_ms`` (ms); all three padded with -1.
``cesnet-ppi``  ``APP``, ``PPI``: per flow ``[IPT (ms), DIR (+1/-1), SIZE (bytes)]``, three
                lists zero padded to 30 (CESNET DataZoo's per-packet information).
``tcbench``     ``app``, ``pkts_size`` (bytes), ``pkts_dir`` (0/1), ``timetofirst`` (s).
==============  ==========================================================================

Without a layout or field flags, ``flows:`` picks the layout whose fields the first table
holds (``detect_layout``). Flags given with ``--layout`` override its fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from jtcaug.data.flows import DatasetError

DIR_CONVENTIONS = ("auto", "signed", "zero-one")
IAT_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


@dataclass(frozen=True)
class FieldMapping:
    """Which record field holds what (command line: ``--label-field`` etc.).

    Attributes:
      label_field: the class of the flow (string name or integer id).
      label_names: path of a JSON object ``{name: id}``, or that object; None: classes are
        the distinct label values, sorted.
      size_field, dir_field: per-packet sizes (bytes, >= 0) and directions.
      dir_convention: how ``dir_field`` values map to +1/-1 (``flowtable`` docstring).
      signed_size_field: per-packet signed sizes, instead of size + direction.
      iat_field: per-packet IATs; or time_field: per-packet timestamps; both in
        ``iat_unit`` (``s``, ``ms`` or ``us``).
      ppi_field: one field holding ``[IATs, directions, sizes]`` (CESNET's PPI) instead of
        the three per-packet fields; directions +1/-1.
      pad_value: the value that pads sequences to a fixed length (e.g. 0 or -1); a
        position whose direction (or signed size) equals it is padding. Padding must
        trail the real packets and is dropped. None: sequences are not padded.
      group_field: a per-flow field naming the flow's group (capture file, session,
        device); folds then keep each group in one part.
    """

    label_field: str = "label"
    label_names: str | Path | dict | None = None
    size_field: str | None = None
    dir_field: str | None = None
    dir_convention: str = "auto"
    iat_field: str | None = None
    time_field: str | None = None
    signed_size_field: str | None = None
    iat_unit: str = "s"
    ppi_field: str | None = None
    pad_value: float | None = None
    group_field: str | None = None

    def __post_init__(self) -> None:
        if self.ppi_field is not None:
            others = [
                f
                for f in ("size_field", "dir_field", "signed_size_field", "iat_field", "time_field")
                if getattr(self, f) is not None
            ]
            if others:
                flags = ", ".join("--" + f.replace("_", "-") for f in others)
                raise DatasetError(f"--ppi-field holds all packet fields; drop {flags}")
        else:
            split = self.size_field is not None or self.dir_field is not None
            if self.signed_size_field is not None and split:
                raise DatasetError(
                    "give either --signed-size-field or --size-field with --dir-field, not both"
                )
            if self.signed_size_field is None and (
                self.size_field is None or self.dir_field is None
            ):
                raise DatasetError(
                    "a flow table needs --signed-size-field, or both --size-field and "
                    "--dir-field (or --ppi-field, or a --layout)"
                )
            if (self.iat_field is None) == (self.time_field is None):
                raise DatasetError("a flow table needs exactly one of --iat-field or --time-field")
        if self.dir_convention not in DIR_CONVENTIONS:
            raise DatasetError(
                f"--dir-convention must be one of {DIR_CONVENTIONS}, got {self.dir_convention!r}"
            )
        if self.iat_unit not in IAT_UNITS:
            raise DatasetError(
                f"--iat-unit must be one of {tuple(IAT_UNITS)}, got {self.iat_unit!r}"
            )
        if self.pad_value is not None:
            if self.pad_value in (1.0, -1.0) and self.dir_convention == "signed":
                raise DatasetError(
                    f"--pad-value {self.pad_value:g} is a direction of the signed convention"
                )
            if self.pad_value in (0.0, 1.0) and self.dir_convention == "zero-one":
                raise DatasetError(
                    f"--pad-value {self.pad_value:g} is a direction of the zero-one convention"
                )

    @property
    def packet_fields(self) -> tuple[str, ...]:
        """Per-packet list fields, in a fixed order: sizes, directions (if any), times.

        With ``ppi_field`` these are its three rows, named ``PPI[2]``, ``PPI[1]``, ``PPI[0]``.
        """
        if self.ppi_field:
            return (self.ppi_sizes, self.ppi_dirs, self.ppi_iats)
        sizes = (
            (self.signed_size_field,)
            if self.signed_size_field
            else (self.size_field, self.dir_field)
        )
        return (*sizes, self.iat_field or self.time_field)

    @property
    def ppi_iats(self) -> str:
        return f"{self.ppi_field}[0]"

    @property
    def ppi_dirs(self) -> str:
        return f"{self.ppi_field}[1]"

    @property
    def ppi_sizes(self) -> str:
        return f"{self.ppi_field}[2]"

    @property
    def source_fields(self) -> tuple[str, ...]:
        """The record fields read: label, packet fields (or the PPI field), group."""
        packets = (self.ppi_field,) if self.ppi_field else self.packet_fields
        group = (self.group_field,) if self.group_field else ()
        return tuple(dict.fromkeys((self.label_field, *packets, *group)))

    @property
    def size_key(self) -> str | None:
        """The per-packet field of unsigned sizes (None with signed sizes)."""
        return self.ppi_sizes if self.ppi_field else self.size_field

    @property
    def dir_key(self) -> str | None:
        """The per-packet field of directions (None with signed sizes)."""
        return self.ppi_dirs if self.ppi_field else self.dir_field

    @property
    def iat_key(self) -> str | None:
        """The per-packet field of IATs (None with timestamps)."""
        return self.ppi_iats if self.ppi_field else self.iat_field

    @property
    def pad_field(self) -> str:
        """The field whose value marks padding: the directions, else the signed sizes."""
        return self.dir_key or self.signed_size_field

    @property
    def effective_dir_convention(self) -> str:
        return "signed" if self.ppi_field else self.dir_convention

    def describe(self) -> dict:
        """JSON-ready form (for provenance and cache keys)."""
        out = asdict(self)
        if isinstance(self.label_names, Path):
            out["label_names"] = str(self.label_names)
        return out


LAYOUTS: dict[str, dict] = {
    "jtcaug": {
        "label_field": "label",
        "size_field": "size",
        "dir_field": "direction",
        "dir_convention": "signed",
        "iat_field": "iat",
    },
    "nfstream": {
        "label_field": "label",
        "size_field": "splt_ps",
        "dir_field": "splt_direction",
        "dir_convention": "zero-one",
        "iat_field": "splt_piat_ms",
        "iat_unit": "ms",
        "pad_value": -1.0,
    },
    "cesnet-ppi": {
        "label_field": "APP",
        "ppi_field": "PPI",
        "iat_unit": "ms",
        "pad_value": 0.0,
    },
    "tcbench": {
        "label_field": "app",
        "size_field": "pkts_size",
        "dir_field": "pkts_dir",
        "dir_convention": "zero-one",
        "time_field": "timetofirst",
    },
}
_MAPPING_KEYS = {f.name for f in fields(FieldMapping)}


def layout_mapping(layout: str, **overrides) -> FieldMapping:
    """The mapping of ``layout`` with ``overrides`` (None values are ignored).

    An override of one packet field replaces the layout's whole packet-field family: a
    ``signed_size_field`` drops the layout's size and direction fields, for instance.
    """
    if layout not in LAYOUTS:
        raise DatasetError(f"unknown --layout {layout!r}; expected one of {sorted(LAYOUTS)}")
    base = dict(LAYOUTS[layout])
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - _MAPPING_KEYS
    if unknown:
        raise DatasetError(f"unknown field-mapping option(s) {sorted(unknown)}")
    families = (
        {"size_field", "dir_field", "signed_size_field", "ppi_field"},
        {"iat_field", "time_field", "ppi_field"},
    )
    for family in families:
        if family & set(given):
            for key in family - set(given):
                base.pop(key, None)
    return FieldMapping(**{**base, **given})


def detect_layout(columns: set[str]) -> str | None:
    """The layout whose expected fields are all in ``columns`` (the first match), or None."""
    for name, spec in LAYOUTS.items():
        needed = {v for k, v in spec.items() if k.endswith("_field") and isinstance(v, str)}
        if needed <= columns:
            return name
    return None
