"""Test-wide JAX settings: 2 forced CPU devices and strict dtype promotion.

Both must be set before the first JAX computation, hence at conftest import time; the backend
starts here too.
"""

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_numpy_dtype_promotion", "strict")
# Started now, so the layout holds for every test: a campaign's main called in-process
# (which splits the CPU by its preset) finds JAX running and leaves it alone.
assert len(jax.devices()) == 2

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need real data skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (../shared/data is absent)")
    return SHARED_DATA
