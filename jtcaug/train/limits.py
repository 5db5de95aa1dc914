"""Limits a run must respect before it starts: values the jitted core can represent, and
memory the compiled program needs against what the device has free."""

from __future__ import annotations

from jtcaug.train import batching
from jtcaug.train.config import TrainConfig

# Far beyond any run's needs (the paper trains at most 500 epochs), yet small enough that the
# per-epoch history arrays stay a few megabytes instead of exhausting memory at start-up.
MAX_EPOCHS = 1_000_000
_INT32_MAX = 2**31 - 1


def check_limits(config: TrainConfig, n_train: int, *, seeded: bool = True) -> None:
    """Refuses values ``TrainConfig.validate`` accepts but the jitted core cannot represent.

    Args:
      n_train: training rows (the step count depends on it).
      seeded: the run's key comes from ``config.seed`` (``jax.random.PRNGKey``), which keeps
        32 bits, so larger seeds would silently repeat smaller ones.

    Raises:
      ValueError: one line naming the setting and its limit.
    """
    if config.max_epochs > MAX_EPOCHS:
        raise ValueError(f"max_epochs must be <= {MAX_EPOCHS}, got {config.max_epochs}")
    for name in ("batch_size", "patience", "eval_batch_size"):
        if getattr(config, name) > _INT32_MAX:
            raise ValueError(f"{name} must be <= {_INT32_MAX}, got {getattr(config, name)}")
    if seeded and config.seed >= 2**32:
        raise ValueError(f"seed must be < {2**32} (a 32-bit key seed), got {config.seed}")
    policy = config.parsed_policy
    steps = batching.steps_per_epoch(
        policy.training_set_size(n_train), policy.originals_per_step(config.batch_size)
    )
    if steps * config.max_epochs > _INT32_MAX:
        raise ValueError(
            f"max_epochs {config.max_epochs} x {steps} steps per epoch exceeds the "
            f"{_INT32_MAX} steps the step counter holds"
        )


class DeviceMemoryError(ValueError):
    """The batch size cannot fit the device's memory (found before training, or during it)."""


def oversized_batch_warning(config: TrainConfig, n_train: int) -> str | None:
    """A warning when one step draws more rows than the training pool holds, else None.

    Such a step repeats rows (the sampler wraps around the epoch's permutation), so every
    epoch is one step over a mostly duplicated batch: legal, but rarely what was meant.
    """
    policy = config.parsed_policy
    pool = policy.training_set_size(n_train)
    per_step = policy.originals_per_step(config.batch_size)
    if per_step <= pool:
        return None
    return (
        f"batch_size {config.batch_size} draws {per_step} rows per step from a training set "
        f"of {pool}: each step repeats rows"
    )


def memory_shortfall(needed: int, free: int, subject: str, platform: str, remedy: str):
    """The one-line error when ``subject`` needs more bytes than are free, else None."""
    if needed <= free:
        return None
    gib = 2**30
    return (
        f"{subject} needs about {needed / gib:.1f} GiB of {platform} memory, only "
        f"{free / gib:.1f} GiB are free; {remedy}"
    )


def footprint(jitted, *args) -> int | None:
    """Bytes a jitted call allocates (outputs and temporaries), from its compiled program.

    The program is the one the call itself then runs (jit reuses the compilation), so
    asking costs no extra compilation. None when the backend does not say.
    """
    try:
        stats = jitted.lower(*args).compile().memory_analysis()
    except (AttributeError, NotImplementedError):
        return None
    if stats is None:
        return None
    return int(stats.output_size_in_bytes + stats.temp_size_in_bytes - stats.alias_size_in_bytes)


def check_memory(needed: int | None, device, subject: str, remedy: str) -> None:
    """Refuses, before anything is allocated, a call that cannot fit the free memory."""
    free = free_device_memory(device)
    if needed is None or free is None:
        return
    message = memory_shortfall(needed, free, subject, device.platform, remedy)
    if message:
        raise DeviceMemoryError(message)


def free_device_memory(device) -> int | None:
    """Bytes free on ``device``: its allocator's limit less what is in use, or for a CPU
    (no allocator statistics) the host's available memory; None when unknown."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def is_out_of_memory(err: Exception) -> bool:
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text
