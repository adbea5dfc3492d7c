"""Where the netlists of a circuit-level validation run: a local ngspice pool or a Dask cluster.

:class:`ValidationExecutor` wraps the calibration stage's
:class:`~spicecross.calibration.execution.NetlistExecutor`, so ``--workers`` and
``--scheduler`` mean the same thing in ``calibrate``, ``run`` and ``validate``:
locally, libngspice in ``workers`` child processes; with a scheduler address,
the ``ngspice`` program in batch mode on the cluster's workers. A run that fails
is retried ``retries`` times before the error is raised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from spicecross.errors import SimulationError
from spicecross.sim.runner import RunOutput

logger = logging.getLogger(__name__)


class ValidationExecutor:
    """Runs batches of netlists and returns their outputs in order.

    Args:
        workers: local ngspice worker processes (≥ 1); ignored with ``scheduler``.
        scheduler: address of a Dask scheduler (``tcp://HOST:PORT``), or None for local workers.
        timeout: wall-time limit of one ngspice run, s.
        retries: extra attempts of a run that failed (crash, timeout, convergence).
    """

    def __init__(
        self, workers: int = 1, *, scheduler: str | None = None, timeout: float = 1800.0, retries: int = 1
    ):
        from spicecross.calibration.execution import NetlistExecutor

        if retries < 0:
            raise ValueError(f"retries={retries!r} is invalid: give a whole number >= 0")
        self._inner = NetlistExecutor(workers, scheduler=scheduler, timeout=timeout)
        self.workers = workers
        self.scheduler = scheduler
        self.retries = retries
        self.runs = 0
        self.failures = 0

    @property
    def description(self) -> str:
        """Where runs go, for logs and reports."""
        return self._inner.description

    @property
    def slots(self) -> int:
        """How many netlists to split one batch into so that every worker has work."""
        return self.workers if not self.scheduler else max(self.workers, 2)

    def run_all(self, netlists: Sequence[str]) -> list[RunOutput]:
        """Run every netlist and return the outputs in the same order.

        Raises:
            SimulationError: a run failed ``retries + 1`` times; the last error is raised.
        """
        outputs: list[RunOutput | None] = [None] * len(netlists)
        pending = list(range(len(netlists)))
        for attempt in range(self.retries + 1):
            errors: dict[int, SimulationError] = {}
            for position, out in self._inner.run_each([netlists[k] for k in pending]):
                index = pending[position]
                self.runs += 1
                if isinstance(out, SimulationError):
                    self.failures += 1
                    errors[index] = out
                else:
                    outputs[index] = out
            if not errors:
                return outputs  # type: ignore[return-value]
            pending = sorted(errors)
            if attempt < self.retries:
                logger.warning(
                    "retrying %d failed ngspice run(s) (attempt %d of %d): %s",
                    len(pending),
                    attempt + 2,
                    self.retries + 1,
                    str(errors[pending[0]]).splitlines()[0],
                )
        raise errors[pending[0]]

    def close(self) -> None:
        """Stop the local workers or disconnect from the cluster."""
        self._inner.close()

    def __enter__(self) -> ValidationExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
