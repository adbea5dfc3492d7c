"""Running batches of netlists for calibration: on a local ngspice pool or on a Dask cluster.

Every sweep of the calibration stage goes through :func:`run_netlists`, so the
choice of executor is made in one place. Locally it uses
:class:`~spicecross.sim.runner.NgspiceRunner` (shared-library mode, one worker
process per core asked for). With a Dask scheduler address it submits each
netlist to the cluster, where a worker runs the ``ngspice`` program in batch
mode (a crash costs that one run).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from spicecross.errors import SimulationError
from spicecross.sim.runner import NgspiceRunner, RunOutput, run_in_this_process
from spicecross.sweep.executor import connect_scheduler

logger = logging.getLogger(__name__)


class NetlistExecutor:
    """Where calibration sweeps run: a local ngspice pool, or a Dask scheduler.

    Args:
        workers: local ngspice worker processes (≥ 1); ignored with ``scheduler``.
        scheduler: address of a Dask scheduler, such as ``tcp://127.0.0.1:8786``, or None.
        timeout: wall-time limit of one ngspice run, s.
        connect_timeout: time to wait for the Dask scheduler, s.
    """

    def __init__(self, workers: int = 1, *, scheduler: str | None = None, timeout: float = 600.0,
                 connect_timeout: float = 10.0):
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r} is invalid: give a whole number >= 1")
        self.workers = workers
        self.scheduler = scheduler
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self._runner: NgspiceRunner | None = None
        self._client = None

    @property
    def description(self) -> str:
        """Where runs go, for logs and reports."""
        if self.scheduler:
            return f"dask scheduler {self.scheduler} (ngspice batch mode)"
        return f"local pool of {self.workers} ngspice worker(s) (shared library)"

    def _local(self) -> NgspiceRunner:
        if self._runner is None:
            self._runner = NgspiceRunner(self.workers, timeout=self.timeout)
        return self._runner

    def _dask(self):
        if self._client is None:
            self._client = connect_scheduler(self.scheduler, self.connect_timeout)
        return self._client

    def run_each(self, netlists: Sequence[str]) -> Iterator[tuple[int, RunOutput | SimulationError]]:
        """Run every netlist and yield ``(index, output or error)`` as runs finish.

        A run that fails yields its :class:`~spicecross.errors.SimulationError` in
        place of an output, so the caller decides whether one failure stops the sweep.
        """
        if not netlists:
            return
        if self.scheduler:
            yield from self._run_dask(netlists)
            return
        runner = self._local()
        futures = [runner.submit(text) for text in netlists]
        for index, (future, text) in enumerate(zip(futures, netlists, strict=False)):
            try:
                yield index, runner.result(future, text)
            except SimulationError as exc:
                logger.warning(
                    "ngspice run %d of %d failed: %s", index + 1, len(netlists), str(exc).splitlines()[0]
                )
                yield index, exc

    def _run_dask(self, netlists):
        from dask.distributed import as_completed

        client = self._dask()
        futures = [client.submit(run_in_this_process, text, "batch", pure=False) for text in netlists]
        order = {future.key: k for k, future in enumerate(futures)}
        for future in as_completed(futures, loop=client.loop):
            index = order[future.key]
            try:
                yield index, future.result(timeout=self.timeout)
            except SimulationError as exc:
                logger.warning(
                    "ngspice run %d of %d failed on the cluster: %s",
                    index + 1,
                    len(netlists),
                    str(exc).splitlines()[0],
                )
                yield index, exc

    def run(self, netlist: str) -> RunOutput:
        """Run one netlist and return its output; raise SimulationError when it fails."""
        for _, out in self.run_each([netlist]):
            if isinstance(out, SimulationError):
                raise out
            return out
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the local workers or close the Dask client."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> NetlistExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
