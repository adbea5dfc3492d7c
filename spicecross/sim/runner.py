"""Worker processes that run ngspice, so that a crash or a hang costs one run.

ngspice's shared library cannot recover from a fatal error and keeps memory it
allocated, so spicecross never loads it in the calling process. A
:class:`NgspiceRunner` owns a pool of worker processes, each with its own ngspice
instance. The pool is replaced after ``max_tasks_per_child`` runs per worker to
keep memory flat, a run that exceeds ``timeout`` kills the pool's processes, and
a crashed worker is replaced. Either failure raises
:class:`~spicecross.errors.SimulationError` for that run only.

Workers start with ``fork`` where the platform has it, so a user's script needs
no ``if __name__ == "__main__":`` guard; elsewhere ``spawn`` is used. Each worker
watches its parent process and exits, killing its ngspice run, once the parent is
gone. So a main process killed with SIGKILL leaves no worker running.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from spicecross.errors import SimulationError

logger = logging.getLogger(__name__)

MODES = ("shared", "batch")
_SESSION = None


@dataclass
class RunOutput:
    """Vectors and output of one ngspice run.

    Attributes:
        vectors: ``{name: values}``; node names give voltages (V), ``SOURCE#branch`` currents (A).
        output: what ngspice printed.
        version: ngspice version, such as ``ngspice-39``.
        mode: ``shared`` or ``batch``.
    """

    vectors: dict
    output: str
    version: str
    mode: str


def run_in_this_process(netlist: str, mode: str = "shared") -> RunOutput:
    """Run ``netlist`` in this process. Call it only inside a worker process."""
    global _SESSION
    if mode == "batch":
        from spicecross.sim.ngspice import batch_version, run_batch

        vectors, output = run_batch(netlist)
        return RunOutput(vectors, output, batch_version(), "batch")
    if _SESSION is None:
        from spicecross.sim.ngspice import SharedNgspice

        _SESSION = SharedNgspice()
    vectors, output = _SESSION.run(netlist)
    return RunOutput(vectors, output, _SESSION.version, "shared")


def watch_parent(parent_pid: int, interval: float = 1.0) -> None:
    """Start a thread that ends this worker process once ``parent_pid`` is no longer its parent.

    The thread checks every ``interval`` seconds. Before exiting it kills the
    ngspice program of a batch-mode run, which would otherwise run to its end.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        from spicecross.sim.ngspice import kill_batch_runs

        kill_batch_runs()
        os._exit(1)

    threading.Thread(target=watch, name="spicecross-parent-watch", daemon=True).start()


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is a valid ngspice mode, else raise ValueError."""
    if mode not in MODES:
        raise ValueError(f"ngspice mode {mode!r} is invalid: use 'shared' (the shared library, "
                         "through PySpice) or 'batch' (the ngspice program)")
    return mode


class NgspiceRunner:
    """A local pool of ngspice worker processes.

    Args:
        workers: number of worker processes (≥ 1).
        mode: ``shared`` (libngspice through PySpice) or ``batch`` (``ngspice -b``).
        timeout: wall-time limit of one run, s.
        max_tasks_per_child: runs after which a worker is replaced.
    """

    def __init__(self, workers: int = 1, *, mode: str = "shared", timeout: float = 600.0,
                 max_tasks_per_child: int = 200):
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r} is invalid: give a whole number >= 1")
        if not timeout > 0:
            raise ValueError(f"timeout={timeout!r} s is invalid: give a positive number of seconds")
        self.workers = workers
        self.mode = check_mode(mode)
        self.timeout = float(timeout)
        self.max_tasks_per_child = max_tasks_per_child
        self._pool: cf.ProcessPoolExecutor | None = None
        self._submitted = 0

    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is not None and self._submitted >= self.max_tasks_per_child * self.workers:
            # Recycle the workers: ngspice keeps some memory per run even after remcirc.
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self._pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                                initializer=watch_parent, initargs=(os.getpid(),))
            self._submitted = 0
        return self._pool

    def _reset(self) -> None:
        """Kill every worker (after a hang or a crash) so that the next run starts fresh."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, netlist: str) -> cf.Future:
        """Start one run and return its future (resolve it with :meth:`result`)."""
        future = self._executor().submit(run_in_this_process, netlist, self.mode)
        self._submitted += 1
        return future

    def result(self, future: cf.Future, netlist: str) -> RunOutput:
        """Wait for ``future``; a hang or a crash becomes a SimulationError for this run only."""
        try:
            return future.result(timeout=self.timeout)
        except cf.TimeoutError:
            logger.warning("ngspice run exceeded %g s; killing the worker pool", self.timeout)
            self._reset()
            raise SimulationError(f"ngspice timed out after {self.timeout:g} s: raise the limit (--timeout "
                                  "on the command line, timeout= in Python), solve a smaller tile, or check "
                                  "the netlist for a hard convergence problem",
                                  netlist=netlist) from None
        except BrokenProcessPool:
            logger.warning("an ngspice worker crashed; starting a new pool")
            self._reset()
            raise SimulationError("the ngspice worker process crashed during this run",
                                  netlist=netlist) from None

    def run(self, netlist: str) -> RunOutput:
        """Run one netlist and wait for it."""
        return self.result(self.submit(netlist), netlist)

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> NgspiceRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
