"""Data-layer fixtures: every test gets its own cache dir and no real-data search path."""

from pathlib import Path

import pytest

from jtcaug.data import generate


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Points ``$JTCAUG_CACHE`` at a fresh temp dir and hides ``$JTCAUG_DATA``."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("JTCAUG_CACHE", str(cache))
    monkeypatch.delenv("JTCAUG_DATA", raising=False)
    return cache


@pytest.fixture(scope="session")
def small_synthetic():
    """``synthetic-mirage19`` at scale 0.05 (about 3.2k flows), generated once."""
    return generate("synthetic-mirage19", scale=0.05, seed=0)


@pytest.fixture(scope="session")
def exported_tree(tmp_path_factory) -> Path:
    """A raw MIRAGE-2019 tree of ``synthetic-mirage19`` at scale 0.02."""
    from jtcaug.data import export_mirage19

    out = tmp_path_factory.mktemp("export")
    export_mirage19(out, scale=0.02, seed=3)
    return out / "MIRAGE-2019_traffic_dataset_downloadable"
