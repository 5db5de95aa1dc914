"""Checkpoint integrity: damaged steps are found, moved aside, and the run falls back.

Every resumed run here is compared bitwise with the uninterrupted ``reference`` run.
"""

import json
import os
import shutil
import stat

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug.train import run
from jtcaug.train.checkpoint import (
    CHECKSUM_FILE,
    CheckpointDamaged,
    Checkpointer,
    CheckpointWriteError,
)


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def interrupted(tiny_fold, tiny_config, tmp_path_factory):
    """Checkpoints of the tiny run stopped after epoch 3: steps 2 and 3 (checkpoint_every=2)."""
    directory = tmp_path_factory.mktemp("interrupted")

    def stop_after_3(report):
        if report.epoch == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(tiny_fold, tiny_config, checkpoint_dir=directory, progress=False, on_epoch=stop_after_3)
    with Checkpointer(directory) as ckpt:
        assert ckpt.epochs() == [2, 3]
    return directory


@pytest.fixture
def checkpoints(interrupted, tmp_path):
    """A private copy of the interrupted run's checkpoints, free to damage."""
    copy = tmp_path / "checkpoints"
    shutil.copytree(interrupted, copy)
    return copy


def _largest_data_file(step):
    return max((p for p in step.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _truncate(step):
    path = _largest_data_file(step)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_one_bit(step):
    path = _largest_data_file(step)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _delete_state(step):
    shutil.rmtree(step / "state")


def _empty(step):
    for entry in step.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _garble_meta(step):
    path = step / "meta" / "metadata"
    path.write_text(path.read_text()[:-7] + "}{garbage")


def _delete_checksums(step):
    (step / CHECKSUM_FILE).unlink()


def _garble_checksums(step):
    (step / CHECKSUM_FILE).write_text('{"format": 1, "files": [')


DAMAGE = {
    "truncated data file": (_truncate, "bytes"),
    "one flipped bit": (_flip_one_bit, "does not match its checksum"),
    "state/ deleted": (_delete_state, "state/"),
    "step directory emptied": (_empty, "is empty"),
    "garbled metadata": (_garble_meta, "meta/metadata"),
    "no checksum file": (_delete_checksums, f"no {CHECKSUM_FILE}"),
    "garbled checksum file": (_garble_checksums, "unreadable"),
}


def _resume(fold, config, directory, warnings):
    return run(
        fold,
        config,
        checkpoint_dir=directory,
        resume=True,
        progress=False,
        return_state=True,
        return_latents=True,
        warn=warnings.append,
    )


def _assert_bitwise_equal(result, reference):
    assert result.metrics == reference.metrics
    assert result.history == reference.history
    assert result.best_epoch == reference.best_epoch
    np.testing.assert_array_equal(result.test_pred, reference.test_pred)
    chex.assert_trees_all_equal(result.state, reference.state)
    np.testing.assert_array_equal(result.test_latent, reference.test_latent)


@pytest.mark.parametrize("kind", DAMAGE)
def test_each_damage_is_named(checkpoints, kind):
    damage, reason = DAMAGE[kind]
    damage(checkpoints / "3")
    with Checkpointer(checkpoints) as ckpt:
        with pytest.raises(CheckpointDamaged, match="checkpoint .*3 is damaged") as caught:
            ckpt.verify(3)
        assert reason in caught.value.reason
        ckpt.verify(2)  # the older step is untouched


@pytest.mark.parametrize("kind", DAMAGE)
def test_resume_falls_back_past_a_damaged_newest_checkpoint(
    checkpoints, kind, reference, tiny_fold, tiny_config
):
    DAMAGE[kind][0](checkpoints / "3")
    warnings = []
    resumed = _resume(tiny_fold, tiny_config, checkpoints, warnings)
    _assert_bitwise_equal(resumed, reference)
    assert len(warnings) == 1 and "3 is damaged" in warnings[0]
    assert "trying the previous checkpoint" in warnings[0]
    moved = [p.name for p in checkpoints.iterdir() if p.name.startswith("3.corrupt-")]
    assert len(moved) == 1 and moved[0] in warnings[0]  # kept for inspection, named
    with Checkpointer(checkpoints) as ckpt:
        assert ckpt.latest_epoch() == tiny_config.max_epochs
        ckpt.verify(tiny_config.max_epochs)  # the redone steps carry checksums again


def test_no_usable_checkpoint_starts_fresh_with_a_warning(
    checkpoints, reference, tiny_fold, tiny_config
):
    _flip_one_bit(checkpoints / "3")
    _truncate(checkpoints / "2")
    warnings = []
    resumed = _resume(tiny_fold, tiny_config, checkpoints, warnings)
    _assert_bitwise_equal(resumed, reference)
    assert len(warnings) == 3
    assert "3 is damaged" in warnings[0] and "2 is damaged" in warnings[1]
    assert "no usable checkpoint" in warnings[2] and "starting the run over" in warnings[2]


def test_an_intact_checkpoint_resumes_without_warnings(
    checkpoints, reference, tiny_fold, tiny_config
):
    warnings = []
    _assert_bitwise_equal(_resume(tiny_fold, tiny_config, checkpoints, warnings), reference)
    assert warnings == []


def test_the_checksum_file_lists_every_file_of_the_step(checkpoints):
    step = checkpoints / "3"
    record = json.loads((step / CHECKSUM_FILE).read_text())
    files = {p.relative_to(step).as_posix() for p in step.rglob("*") if p.is_file()}
    assert set(record["files"]) == files - {CHECKSUM_FILE}
    assert any(name.startswith("state/") for name in files)
    assert "meta/metadata" in files


def test_another_runs_checkpoint_is_named_by_its_differences(checkpoints, tiny_fold, tiny_config):
    import dataclasses

    longer = dataclasses.replace(tiny_config, max_epochs=6, seed=1)
    with pytest.raises(ValueError, match="another run") as caught:
        run(tiny_fold, longer, checkpoint_dir=checkpoints, resume=True, progress=False)
    message = str(caught.value)
    assert "max_epochs: 4 saved, 6 given" in message and "seed: 0 saved, 1 given" in message
    assert "\n" not in message
    assert sorted(p.name for p in checkpoints.iterdir()) == ["2", "3"]  # nothing moved


def test_every_file_of_a_step_gets_the_umask_s_permissions(checkpoints):
    umask = os.umask(0)
    os.umask(umask)
    for path in (checkpoints / "3").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_a_checkpoint_that_cannot_be_written_names_its_path(tmp_path):
    (tmp_path / "checkpoints").write_text("a file in the way")
    with Checkpointer(tmp_path / "checkpoints") as ckpt:
        with pytest.raises(CheckpointWriteError, match="cannot write checkpoint .*checkpoints/1"):
            ckpt.save(1, {"w": jnp.zeros(3)}, {"epoch": 1})
    assert (tmp_path / "checkpoints").read_text() == "a file in the way"


def test_opening_and_reading_create_no_directory(tmp_path):
    directory = tmp_path / "run" / "checkpoints"
    with Checkpointer(directory) as ckpt:
        assert ckpt.latest_epoch() is None and ckpt.epochs() == []
    assert not (tmp_path / "run").exists()


def test_quarantined_steps_are_not_steps(checkpoints):
    with Checkpointer(checkpoints) as ckpt:
        moved = ckpt.quarantine(3)
        assert ckpt.epochs() == [2] and moved.is_dir()
        again = ckpt.quarantine(2)
        assert ckpt.epochs() == [] and again.is_dir()
