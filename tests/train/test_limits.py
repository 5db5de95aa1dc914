"""Settings the jitted core cannot hold, and batches that cannot fit memory, are refused up
front with one line; a batch larger than the training set is a warning."""

import dataclasses

import pytest

from jtcaug.train import TrainConfig, limits, run, runner
from jtcaug.train.limits import (
    MAX_EPOCHS,
    DeviceMemoryError,
    check_limits,
    memory_shortfall,
    oversized_batch_warning,
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_epochs": MAX_EPOCHS + 1}, f"max_epochs must be <= {MAX_EPOCHS}"),
        ({"batch_size": 2**31}, "batch_size must be <= 2147483647"),
        ({"patience": 2**40}, "patience must be <= 2147483647"),
        ({"seed": 2**32}, "seed must be < 4294967296"),
        ({"max_epochs": MAX_EPOCHS, "batch_size": 1}, "steps the step counter holds"),
    ],
)
def test_values_beyond_the_core_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        check_limits(TrainConfig(**change), n_train=3000)


def test_a_large_seed_is_fine_with_an_explicit_key():
    check_limits(TrainConfig(seed=2**40), n_train=300, seeded=False)
    check_limits(TrainConfig(max_epochs=MAX_EPOCHS, batch_size=1024), n_train=300)


def test_a_batch_larger_than_the_training_set_is_a_warning():
    assert oversized_batch_warning(TrainConfig(batch_size=300), 300) is None
    message = oversized_batch_warning(TrainConfig(batch_size=301), 300)
    assert "batch_size 301" in message and "300" in message and "repeats rows" in message
    # inject:1 draws half the batch; preaugment:1 doubles the pool
    inject = TrainConfig(aug="wrap", policy="inject:1", batch_size=600)
    assert oversized_batch_warning(inject, 300) is None
    preaugment = TrainConfig(aug="wrap", policy="preaugment:1", batch_size=600)
    assert oversized_batch_warning(preaugment, 300) is None


def test_memory_shortfall_message():
    assert memory_shortfall(10, 10, "x", "cpu", "fix it") is None
    message = memory_shortfall(3 * 2**30, 2**30, "batch_size 9 makes a step that", "cpu", "less")
    assert message == (
        "batch_size 9 makes a step that needs about 3.0 GiB of cpu memory, only 1.0 GiB are "
        "free; less"
    )


def _no_memory(monkeypatch):
    monkeypatch.setattr(limits, "free_device_memory", lambda device: 1024)


def test_a_step_that_cannot_fit_is_refused_before_training(
    tiny_fold, tiny_config, tmp_path, monkeypatch
):
    _no_memory(monkeypatch)
    epochs = []
    with pytest.raises(DeviceMemoryError, match="batch_size 64 makes a training step that"):
        run(
            tiny_fold,
            tiny_config,
            checkpoint_dir=tmp_path / "checkpoints",
            progress=False,
            on_epoch=epochs.append,
        )
    assert epochs == [] and not (tmp_path / "checkpoints").exists()


def test_a_preaugmented_set_that_cannot_fit_is_refused_before_it_is_built(tiny_fold, monkeypatch):
    _no_memory(monkeypatch)
    config = TrainConfig(aug="wrap", policy="preaugment:1000", batch_size=64, max_epochs=1)
    with pytest.raises(DeviceMemoryError, match="policy preaugment:1000 builds a training set"):
        run(tiny_fold, config, progress=False)


@pytest.mark.slow
def test_an_absurd_batch_is_refused_with_the_real_memory(tiny_fold, tiny_config):
    absurd = dataclasses.replace(tiny_config, batch_size=10**8)
    with pytest.raises(DeviceMemoryError, match=r"GiB of \w+ memory, only .* GiB are free"):
        run(tiny_fold, absurd, progress=False)


def test_running_out_of_memory_during_training_is_one_line(
    tiny_fold, tiny_config, tmp_path, monkeypatch
):
    def exhausted(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 9 GiB\n...")

    monkeypatch.setattr(runner, "_advance", exhausted)
    with pytest.raises(DeviceMemoryError) as caught:
        run(tiny_fold, tiny_config, checkpoint_dir=tmp_path / "checkpoints", progress=False)
    assert str(caught.value) == (
        "batch_size 64 ran out of device memory in epoch 1; use a smaller batch size"
    )
    assert not (tmp_path / "checkpoints").exists()
