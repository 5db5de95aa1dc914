"""On-disk flow cache: hits, keys, corruption detection and rebuild."""

import json
import logging
import os

import numpy as np
import pytest

from jtcaug.data import FieldMapping, MirageCuration, generate, load
from jtcaug.data.cache import CacheCorrupt, cached_flows, default_cache_dir, entry_path, read_entry


class Counter:
    def __init__(self, flows):
        self.flows, self.calls = flows, 0

    def __call__(self):
        self.calls += 1
        return self.flows


@pytest.fixture
def tiny():
    return generate("synthetic", scale=0.01, seed=5)


def test_env_var_sets_the_cache_dir(isolated_cache):
    assert default_cache_dir() == isolated_cache


def test_second_load_is_a_hit(tiny, isolated_cache):
    build = Counter(tiny)
    first = cached_flows("demo", {"a": 1}, build)
    second = cached_flows("demo", {"a": 1}, build)
    assert build.calls == 1
    for key in ("sizes", "directions", "iats", "n_packets", "labels"):
        np.testing.assert_array_equal(getattr(second, key), getattr(first, key))
    assert second.class_names == tiny.class_names and second.provenance == tiny.provenance
    assert entry_path("demo", {"a": 1}).parent == isolated_cache / "flows"
    cached_flows("demo", {"a": 2}, build)  # other parameters, other entry
    assert build.calls == 2
    cached_flows("demo", {"a": 1}, build, enabled=False)
    assert build.calls == 3


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_entry_is_reported_and_rebuilt(tiny, caplog, damage):
    build = Counter(tiny)
    cached_flows("demo", {"b": 1}, build)
    path = entry_path("demo", {"b": 1})
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    else:
        blob = bytearray(b"not an npz at all")
    path.write_bytes(bytes(blob))
    with pytest.raises(CacheCorrupt):
        read_entry(path)
    with caplog.at_level(logging.WARNING, logger="jtcaug.data"):
        again = cached_flows("demo", {"b": 1}, build)
    assert build.calls == 2
    assert "corrupt cache file" in caplog.text and str(path) in caplog.text
    np.testing.assert_array_equal(again.iats, tiny.iats)
    read_entry(path)  # the rebuilt entry verifies


def test_checksum_catches_a_consistent_looking_edit(tiny):
    cached_flows("demo", {"c": 1}, Counter(tiny))
    path = entry_path("demo", {"c": 1})
    with np.load(path) as npz:
        content = {k: npz[k] for k in npz.files}
    content["labels"] = content["labels"][::-1].copy()
    np.savez_compressed(path, **content)
    with pytest.raises(CacheCorrupt, match="checksum"):
        read_entry(path)


def test_mirage_cache_is_keyed_by_curation(exported_tree, monkeypatch):
    calls = []
    import jtcaug.data.registry as registry

    real = registry.read_mirage

    def counting(*args, **kwargs):
        calls.append(kwargs["curation"])
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "read_mirage", counting)
    lenient = MirageCuration(min_class_flows=0)
    a = load("mirage19", data_dir=exported_tree.parent, curation=lenient)
    b = load("mirage19", data_dir=exported_tree.parent, curation=lenient)
    assert len(calls) == 1 and a.n_flows == b.n_flows
    c = load(
        "mirage19",
        data_dir=exported_tree.parent,
        curation=MirageCuration(min_packets=15, min_class_flows=0),
    )
    assert len(calls) == 2 and c.n_flows < a.n_flows
    # Rewriting a capture file with identical bytes keeps the content key: still a hit.
    victim = next(exported_tree.glob("*/*.json"))
    victim.write_bytes(victim.read_bytes())
    load("mirage19", data_dir=exported_tree.parent, curation=lenient)
    assert len(calls) == 2


def _relabel_in_place(path, old: bytes, new: bytes) -> None:
    """Same size, mtime restored: what ``cp -p``, ``rsync -t`` and tar extraction leave."""
    st = path.stat()
    blob = path.read_bytes()
    assert len(old) == len(new) and old in blob
    path.write_bytes(blob.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def _table(path, labels):
    rec = {"s": [100, -200, 300], "t": [0.0, 0.1, 0.2]}
    path.write_text(json.dumps([{**rec, "label": lab} for lab in labels]))


def test_same_size_rewrite_with_restored_mtime_is_a_miss(tmp_path):
    table = tmp_path / "t.json"
    _table(table, ["aa"] * 6 + ["bb"] * 4)
    mapping = FieldMapping(signed_size_field="s", time_field="t")
    first = load(f"flows:{table}", mapping=mapping)
    assert dict(first.summary()["per_class"]) == {"aa": 6, "bb": 4}
    _relabel_in_place(table, b'"aa"', b'"bb"')
    second = load(f"flows:{table}", mapping=mapping)
    assert dict(second.summary()["per_class"]) == {"bb": 10}


def test_entry_copied_from_another_source_is_rejected(tmp_path, caplog):
    mapping = FieldMapping(signed_size_field="s", time_field="t")
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    _table(one, ["a"] * 5)
    _table(two, ["b"] * 7)
    load(f"flows:{one}", mapping=mapping)
    load(f"flows:{two}", mapping=mapping)
    entries = sorted((default_cache_dir() / "flows").glob("flows-*.npz"))
    assert len(entries) == 2
    # Overwrite every entry with the other one's (each stays internally valid).
    blobs = [e.read_bytes() for e in entries]
    for entry, blob in zip(entries, blobs[::-1], strict=True):
        entry.write_bytes(blob)
    with caplog.at_level(logging.WARNING, logger="jtcaug.data"):
        again = load(f"flows:{one}", mapping=mapping)
    assert again.class_names == ("a",) and again.n_flows == 5
    assert "another source" in caplog.text
