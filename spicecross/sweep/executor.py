"""Executors of a sweep's attempts: local worker processes, or an existing Dask cluster.

Both executors take an :class:`~spicecross.sweep.attempt.AttemptRequest` and
call back with an :class:`~spicecross.sweep.attempt.AttemptOutcome`. A failed
ngspice run, and any other exception in a worker, becomes a failed outcome.

Isolation. ngspice never runs in a process that the sweep needs to keep:

* ``batch`` mode starts one ``ngspice -b`` process per attempt and kills it
  after the timeout (:func:`~spicecross.sim.ngspice.run_batch`). A crash or a hang
  ends that process only, and its memory goes back to the system when it exits,
  so memory stays flat over any number of runs.
* ``shared`` mode (local only) gives each local worker an
  :class:`~spicecross.sim.runner.NgspiceRunner` with one child process that keeps
  libngspice loaded, destroys each circuit after its run, and is replaced after
  a crash, a timeout or ``max_tasks_per_child`` runs.

On Dask workers, ngspice runs in batch mode only. A Dask worker is a long-lived
process that other tasks share, so a fatal libngspice error inside it would kill
it. Shared mode would need a child process per worker, but Dask starts its
workers as daemonic processes by default, and those may not start children.
The program in a subprocess needs neither. It costs little here, because each
job is one ngspice load that solves a whole batch of input vectors.

The local executor runs each worker's attempts from a thread of this process,
because the thread only waits for its ngspice child and turns the vectors into
arrays.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import threading
from collections.abc import Callable

from spicecross.errors import SpicecrossError
from spicecross.sweep.attempt import (
    AttemptOutcome,
    AttemptRequest,
    _batch_version,
    execute_attempt,
    execute_attempt_batch,
    failure,
    run_batch_mode,
)

logger = logging.getLogger(__name__)

Callback = Callable[[AttemptOutcome], None]


class SchedulerUnavailableError(SpicecrossError):
    """The Dask scheduler did not respond, or has no usable workers."""


def check_scheduler_address(address: str) -> str:
    """Return ``address`` if it reads as ``PROTOCOL://HOST:PORT`` with a valid port, else raise ValueError.

    Dask itself accepts more forms (a bare ``HOST:PORT`` means tcp); those pass too.
    The check catches typing errors before a connection attempt waits for its timeout.
    """
    text = str(address).strip()
    rest = text.split("://", 1)[1] if "://" in text else text
    host, _, port = rest.rpartition(":")
    if not host or not port:
        raise ValueError(f"scheduler address {address!r} is invalid: give PROTOCOL://HOST:PORT, "
                         "for example tcp://127.0.0.1:8786")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"scheduler address {address!r} has an invalid port {port!r}: give a port "
                         "from 1 to 65535, for example tcp://127.0.0.1:8786")
    return text


def connect_scheduler(address: str, connect_timeout: float = 10.0):
    """Return a ``distributed.Client`` of the Dask scheduler at ``address`` that has a worker.

    Raises:
        SchedulerUnavailableError: dask.distributed is missing, the scheduler does not
            respond within ``connect_timeout`` s, or it has no worker by then.
    """
    try:
        from distributed import Client
    except ImportError as exc:
        raise SchedulerUnavailableError(f"dask.distributed is not installed ({exc}): "
                                        "pip install 'dask[distributed]'") from exc
    address = check_scheduler_address(address)
    try:
        client = Client(address, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnavailableError(
            f"the Dask scheduler at {address} did not respond within {connect_timeout:g} s ({exc}). "
            "Check that 'dask scheduler' is running there, that the host and port are right and "
            "reachable from this machine, or run without --scheduler to use local workers") from None
    try:
        client.wait_for_workers(1, timeout=connect_timeout)
    except (OSError, TimeoutError):
        client.close()
        raise SchedulerUnavailableError(
            f"the Dask scheduler at {address} has no workers after {connect_timeout:g} s: start "
            f"workers with 'dask worker {address}'") from None
    return client


def _lost(request: AttemptRequest, exc: BaseException) -> AttemptOutcome:
    """Return the outcome of an attempt whose worker failed outside ngspice."""
    logger.warning("job %s attempt %d: worker failed: %s: %s", request.job.job_id[:12], request.attempt,
                   type(exc).__name__, exc)
    return failure(request, "lost", f"the worker running this attempt failed: {type(exc).__name__}: {exc}")


# ----------------------------------------------------------------- local ----

class LocalExecutor:
    """``workers`` ngspice workers on this machine.

    Args:
        workers: number of attempts run at once (≥ 1).
        mode: ``batch`` or ``shared``.
        timeout: wall-time limit of one ngspice run, s.
        max_tasks_per_child: in shared mode, runs after which a worker's ngspice process is replaced.
    """

    def __init__(self, workers: int, *, mode: str = "batch", timeout: float = 600.0,
                 max_tasks_per_child: int = 200):
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r} is invalid: give a whole number >= 1")
        if mode not in ("batch", "shared"):
            raise ValueError(f"ngspice mode {mode!r} is invalid: use 'batch' or 'shared'")
        self.workers = workers
        self.mode = mode
        self.timeout = float(timeout)
        self.max_tasks_per_child = max_tasks_per_child
        self._threads = cf.ThreadPoolExecutor(workers, thread_name_prefix="spicecross-sweep")
        self._local = threading.local()
        self._runners = []
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        """Where the attempts run, for logs and summaries."""
        return f"local ({self.workers} worker{'s' if self.workers != 1 else ''}, {self.mode} mode)"

    @property
    def slots(self) -> int:
        """Number of attempts that can run at once."""
        return self.workers

    def _runner(self):
        runner = getattr(self._local, "runner", None)
        if runner is None:
            from spicecross.sim.runner import NgspiceRunner

            # NOTE: NgspiceRunner forks its child where fork exists, here from a
            # thread of a multithreaded process. This ran 1,000 jobs without a
            # hang on Python 3.11, but Python 3.12 warns about fork with threads.

            runner = NgspiceRunner(1, mode="shared", timeout=self.timeout,
                                   max_tasks_per_child=self.max_tasks_per_child)
            self._local.runner = runner
            with self._lock:
                self._runners.append(runner)
        return runner

    def _run(self, request: AttemptRequest) -> AttemptOutcome:
        if self.mode == "batch":
            run = functools.partial(run_batch_mode, timeout=request.timeout)
        else:
            run = self._runner().run
        try:
            return execute_attempt(request, run)
        except Exception as exc:  # noqa: BLE001 - a bug must cost one attempt, not the sweep
            return _lost(request, exc)

    def ngspice_version(self) -> str:
        """Return the version of the ngspice that the workers run, such as ``ngspice-39``."""
        if self.mode == "batch":
            return _batch_version()
        probe = "version probe\nv1 a 0 1\nr1 a 0 1\n.op\n.end\n"
        return self._threads.submit(lambda: self._runner().run(probe).version).result()

    def submit(self, request: AttemptRequest, callback: Callback) -> None:
        """Start an attempt; ``callback(outcome)`` runs in a worker thread when it ends."""
        future = self._threads.submit(self._run, request)

        def done(finished: cf.Future) -> None:
            if not finished.cancelled():
                callback(finished.result())

        future.add_done_callback(done)

    def close(self) -> None:
        """Wait for running attempts and stop the workers."""
        self._threads.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for runner in self._runners:
                runner.close()
            self._runners.clear()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------ dask ----

def _probe_worker() -> dict:
    """Return what a Dask worker runs (executed on every worker by ``Client.run``)."""
    import spicecross

    try:
        version = _batch_version()
    except SpicecrossError as exc:
        return {"spicecross": spicecross.__version__, "ngspice": None, "error": str(exc)}
    return {"spicecross": spicecross.__version__, "ngspice": version, "error": None}


class DaskExecutor:
    """Attempts run as tasks of an existing Dask cluster, ngspice in batch mode.

    Args:
        address: the scheduler, such as ``tcp://127.0.0.1:8786``.
        timeout: wall-time limit of one ngspice run, s.
        connect_timeout: how long to wait for the scheduler and its first worker, s.

    Raises:
        SchedulerUnavailableError: the scheduler does not respond or has no worker.
    """

    def __init__(self, address: str, *, mode: str = "batch", timeout: float = 600.0,
                 connect_timeout: float = 10.0):
        if mode != "batch":
            raise ValueError(f"ngspice mode {mode!r} cannot run on Dask workers: set [ngspice] mode = "
                             "\"batch\" (each run is then its own ngspice process), or run without "
                             "--scheduler to use local workers")
        self.address = address
        self.mode = mode
        self.timeout = float(timeout)
        self.client = connect_scheduler(address, connect_timeout)

    @property
    def description(self) -> str:
        """Where the attempts run, for logs and summaries."""
        return f"dask {self.address} ({self.slots} worker threads, batch mode)"

    @property
    def slots(self) -> int:
        """Number of worker threads in the cluster now."""
        return max(1, sum(self.client.nthreads().values()))

    def ngspice_version(self) -> str:
        """Return the ngspice version of the workers; raise if they differ or lack ngspice or spicecross."""
        import spicecross

        try:
            reports = self.client.run(_probe_worker)
        except (ImportError, ModuleNotFoundError) as exc:
            raise SchedulerUnavailableError(f"the Dask workers at {self.address} cannot import spicecross "
                                            f"({exc}): install it in the workers' environment") from None
        if not reports:
            raise SchedulerUnavailableError(f"the Dask scheduler at {self.address} has no workers")
        broken = {worker: report["error"] for worker, report in reports.items() if report["error"]}
        if broken:
            raise SchedulerUnavailableError(f"ngspice cannot run on Dask workers {broken}")
        spicecross_versions = {report["spicecross"] for report in reports.values()}
        if spicecross_versions != {spicecross.__version__}:
            raise SchedulerUnavailableError(
                f"the Dask workers run spicecross {sorted(spicecross_versions)}, this process "
                f"{spicecross.__version__}: install the same version everywhere")
        versions = {report["ngspice"] for report in reports.values()}
        if len(versions) > 1:
            raise SchedulerUnavailableError(
                f"the Dask workers run different ngspice versions {sorted(versions)}: results would "
                "differ from worker to worker; install one version everywhere")
        return versions.pop()

    def submit(self, request: AttemptRequest, callback: Callback) -> None:
        """Start an attempt as a Dask task; ``callback(outcome)`` runs when it ends."""
        key = f"spicecross-sweep-{request.job.job_id[:16]}-{request.attempt}"
        future = self.client.submit(execute_attempt_batch, request, key=key, pure=False)

        def done(finished) -> None:
            try:
                outcome = finished.result()
            except Exception as exc:  # noqa: BLE001 - a lost task must cost one attempt, not the sweep
                outcome = _lost(request, exc)
            callback(outcome)

        future.add_done_callback(done)

    def close(self) -> None:
        """Disconnect from the scheduler (the cluster keeps running)."""
        self.client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_executor(*, workers: int, mode: str, timeout: float, scheduler: str | None = None,
                  connect_timeout: float = 10.0):
    """Return a :class:`DaskExecutor` when ``scheduler`` is given, else a :class:`LocalExecutor`."""
    if scheduler:
        return DaskExecutor(scheduler, mode=mode, timeout=timeout, connect_timeout=connect_timeout)
    return LocalExecutor(workers, mode=mode, timeout=timeout)
