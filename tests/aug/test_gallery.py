"""The gallery shows every augmentation at work, and writes its PNG with the umask's mode."""

import os
import stat

import numpy as np
import pytest

from jtcaug.aug import NAMES
from jtcaug.aug.__main__ import _all_draws, _first_change, example_flows, main


def test_every_row_of_the_gallery_changes_the_flow():
    flows, labels, stats, _ = example_flows(seed=0)
    draws = _all_draws(flows, labels, stats, alpha=0.5, seed=0)
    assert draws.shape[:2] == (len(NAMES), 16)
    for name, outs in zip(NAMES, draws, strict=True):
        shown, _ = _first_change(flows[0], outs)
        assert not np.array_equal(shown, flows[0]), f"{name} shows the flow unchanged"


@pytest.mark.slow
def test_gallery_command_writes_a_png(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "gallery.png"
        assert main(["gallery", "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    with pytest.raises(SystemExit) as exc:
        main(["gallery", "--out", str(tmp_path / "x.png"), "--alpha", "2"])
    assert exc.value.code == 2
