"""Where units execute: in this process (``local``) or as Ray tasks (``ray``).

An executor takes a ``UnitTask`` and an iterator of units, and yields ``(unit, outcome)``
as units end, where outcome is the task's ``UnitOutcome`` or the exception that ended the
unit. It pulls units from the iterator only when it can start them, because pulling a unit
claims its runs in the store.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator

from experiments.grid import CampaignError, Unit

EXECUTORS = ("local", "ray")
# Seconds to wait for a TCP connection to the Ray head before calling it unreachable.
RAY_CONNECT_TIMEOUT_S = 10.0


class LocalExecutor:
    """Executes units one after another in this process, on its devices."""

    name = "local"

    def describe(self) -> str:
        import jax

        devices = jax.devices()
        return f"local: {len(devices)} {devices[0].platform} device(s) in this process"

    def prepare(self, task) -> None:
        # Loads the dataset here, before any unit, so bad input fails before any work.
        task.unit_fn()

    def map_units(self, task, units: Iterable[Unit]) -> Iterator[tuple[Unit, object]]:
        for unit in units:
            try:
                outcome = task(unit)
            except Exception as exc:  # noqa: BLE001 - a failed unit must not stop the campaign
                outcome = exc
            yield unit, outcome

    def close(self) -> None:
        pass


def _execute_unit(task, unit):
    return task(unit)


class RayExecutor:
    """Executes each unit as a Ray task on a Ray cluster.

    Args:
      address: ``HOST:PORT`` of a running cluster's head (``ray start --head``); None starts
        a local Ray instance in this process.
      cpus_per_unit, gpus_per_unit: the resources a unit's task asks for (fractions of a
        GPU let several units share one).
      max_retries: times Ray reruns a unit whose worker process or node died.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_unit: float = 1.0,
                 gpus_per_unit: float = 0.0, max_retries: int = 3):
        self.address = address
        self.cpus_per_unit = cpus_per_unit
        self.gpus_per_unit = gpus_per_unit
        self.max_retries = max_retries
        self._ray = None

    def start(self) -> None:
        """Connects to (or starts) Ray. Raises CampaignError when that is not possible."""
        try:
            import ray
        except ImportError:
            raise CampaignError(
                "--executor ray needs Ray: pip install -e '.[ray]'"
            ) from None
        if self.address is not None:
            check_reachable(self.address)
        env = {}
        if self.gpus_per_unit and self.gpus_per_unit < 1:
            # Units sharing a GPU must not each grab most of its memory up front.
            env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
        try:
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": env} if env else None,
            )
        except Exception as exc:  # noqa: BLE001 - Ray raises several types for this
            raise CampaignError(f"cannot connect to Ray at {self.address}: "
                                f"{str(exc).splitlines()[0] if str(exc) else exc}") from None
        self._ray = ray

    def describe(self) -> str:
        ray = self._ray
        resources = ray.cluster_resources() if ray is not None else {}
        nodes = len([n for n in ray.nodes() if n.get("Alive")]) if ray is not None else 0
        return (
            f"ray at {self.address or 'a local instance'}: {nodes} node(s), "
            f"{resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU; per unit "
            f"{self.cpus_per_unit:g} CPU, {self.gpus_per_unit:g} GPU"
        )

    def prepare(self, task) -> None:
        pass

    def _window(self) -> int:
        resources = self._ray.cluster_resources()
        slots = resources.get("CPU", 1) / max(self.cpus_per_unit, 1e-6)
        if self.gpus_per_unit:
            slots = min(slots, resources.get("GPU", 0) / self.gpus_per_unit)
        return max(1, int(slots)) + 1

    def map_units(self, task, units: Iterable[Unit]) -> Iterator[tuple[Unit, object]]:
        ray = self._ray
        remote = ray.remote(_execute_unit).options(
            num_cpus=self.cpus_per_unit,
            num_gpus=self.gpus_per_unit,
            max_retries=self.max_retries,
            retry_exceptions=False,
        )
        pending = iter(units)
        in_flight: dict = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(in_flight) < self._window():
                    unit = next(pending, None)
                    if unit is None:
                        exhausted = True
                        break
                    in_flight[remote.remote(task, unit)] = unit
                if not in_flight:
                    return
                done, _ = ray.wait(list(in_flight), num_returns=1)
                unit = in_flight.pop(done[0])
                yield unit, self._outcome(done[0])
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)

    def _outcome(self, ref):
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            return cause if isinstance(cause, Exception) else RuntimeError(_first_line(exc))
        except ray.exceptions.RayError as exc:
            return RuntimeError(f"{type(exc).__name__}: {_first_line(exc)}")

    def close(self) -> None:
        if self._ray is not None:
            self._ray.shutdown()
            self._ray = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_reachable(address: str) -> None:
    """Raises CampaignError unless a TCP connection to ``HOST:PORT`` opens in time."""
    host, _, port = address.rpartition(":")
    if address.startswith("ray://"):
        host, _, port = address[len("ray://"):].rpartition(":")
    if not host or not port.isdigit():
        raise CampaignError(f"--ray-address must be HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise CampaignError(
            f"cannot reach Ray at {address} ({exc.strerror or exc}); is `ray start --head` "
            "running there?"
        ) from None


def make_executor(name: str, address: str | None, cpus_per_unit: float,
                  gpus_per_unit: float):
    """The executor named ``name``, started (Ray connected)."""
    if name == "local":
        if address is not None:
            raise CampaignError("--ray-address needs --executor ray")
        return LocalExecutor()
    if name == "ray":
        executor = RayExecutor(address, cpus_per_unit, gpus_per_unit)
        executor.start()
        return executor
    raise CampaignError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")

