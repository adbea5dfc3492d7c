"""One attempt at one job: the convergence aids, and the function that a worker executes.

A failed job is retried with stronger ngspice options, one step per retry
(:data:`CONVERGENCE_AIDS`). Every option name below was checked on ngspice 39.3
with its ``option`` command, which lists the values in force. The check matters
because ngspice ignores unknown option names without a message.

1. ``more-iterations``: ``itl1`` (operating-point Newton iterations) and ``itl2``
   (iterations per DC-sweep point) raised to 500. ngspice's Newton loop
   (``NIiter`` in ``src/maths/ni/niiter.c``) raises any limit below 100 to 100, so
   smaller values change nothing: on ngspice 39.3, ``itl1=1`` still converges.
2. ``stepping``: also ``gminsteps=20`` and ``srcsteps=20``. The defaults (1) select
   ngspice's dynamic gmin stepping and Gillespie's source stepping; values above
   1 select the classic SPICE3 algorithms with that many steps, a different path
   to the operating point when the dynamic one stalls.
3. ``loose-tolerances``: also ``reltol=1e-6``, ``abstol=1e-12``, ``vntol=1e-9``
   (never tighter than the job's own). This is the last resort because it makes
   the results less accurate: with it, ngspice agrees with the exact solver to
   about 1e-6 relative instead of 1e-9. The aid is stored with every result.

Retries past the third reuse the last step, which still helps against a crash
or a timeout that does not come back.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket
import time
from dataclasses import dataclass, field

import numpy as np

from spicecross.crossbar.topology import build_topology
from spicecross.errors import ConvergenceError, SimulationError, SimulatorNotFoundError
from spicecross.netlist.writer import DEFAULT_OPTIONS
from spicecross.sim.runner import RunOutput
from spicecross.sim.solve import result_from_vectors
from spicecross.sweep.jobs import SweepJob

#: Name of the last-resort aid, which makes results less accurate.
LOOSE_TOLERANCES = "loose-tolerances"
#: (name, options) of each attempt; attempt k uses entry min(k, last).
CONVERGENCE_AIDS = (
    ("none", {}),
    ("more-iterations", {"itl1": 500, "itl2": 500}),
    ("stepping", {"itl1": 1000, "itl2": 1000, "gminsteps": 20, "srcsteps": 20}),
    (LOOSE_TOLERANCES, {"itl1": 1000, "itl2": 1000, "gminsteps": 20, "srcsteps": 20,
                        "reltol": 1e-6, "abstol": 1e-12, "vntol": 1e-9}),
)
#: Options that a convergence aid may only loosen (raise), never tighten.
_TOLERANCES = ("reltol", "abstol", "vntol")

#: Failure kinds; every kind except ``not-installed`` is retried.
FAILURE_KINDS = ("convergence", "timeout", "crash", "error", "lost", "not-installed")


def aid_for_attempt(attempt: int) -> tuple[str, dict]:
    """Return (aid name, options) for attempt ``attempt`` (0 is the first run)."""
    return CONVERGENCE_AIDS[min(attempt, len(CONVERGENCE_AIDS) - 1)]


def attempt_options(job_options: dict, attempt: int) -> dict:
    """Return the ngspice options of an attempt: the job's, with the attempt's aid merged over them."""
    base = {**DEFAULT_OPTIONS, **job_options}
    _, aid = aid_for_attempt(attempt)
    merged = {**base, **aid}
    for key in _TOLERANCES:
        if key in aid and key in base:
            merged[key] = max(base[key], aid[key])
    return merged


@dataclass
class AttemptRequest:
    """Input of one attempt on a worker: the job, the netlist text and the time limit.

    Attributes:
        job: the job.
        attempt: 0 for the first run, k for the k-th retry.
        aid: name of the convergence aid in ``options``.
        options: ngspice options written into ``netlist``.
        netlist: the text that ngspice runs.
        timeout: wall-time limit of the ngspice run, s.
    """

    job: SweepJob
    attempt: int
    aid: str
    options: dict
    netlist: str
    timeout: float

    @property
    def netlist_sha256(self) -> str:
        """SHA-256 (hex) of the netlist text."""
        return hashlib.sha256(self.netlist.encode()).hexdigest()


def make_request(job: SweepJob, attempt: int, timeout: float) -> AttemptRequest:
    """Format the netlist of ``job`` for attempt ``attempt``."""
    aid, _ = aid_for_attempt(attempt)
    options = attempt_options(job.options, attempt)
    netlist = job.netlist(options)
    return AttemptRequest(job=job, attempt=attempt, aid=aid, options=netlist.options,
                          netlist=netlist.text, timeout=timeout)


@dataclass
class AttemptOutcome:
    """The result of one attempt, successful or not.

    Attributes:
        job_id: the job.
        attempt: which attempt (0 = first run).
        aid: convergence aid used.
        ok: whether ngspice returned a complete, finite result.
        kind: ``ok`` or one of :data:`FAILURE_KINDS`.
        message: what failed, empty on success.
        ngspice_version: version that ran the netlist, such as ``ngspice-39``.
        ngspice_output: what ngspice printed.
        options: ngspice options in force.
        netlist_sha256: SHA-256 (hex) of the netlist text.
        elapsed_s: wall time of the attempt on the worker, s.
        worker: ``host:pid`` of the process that ran it.
        arrays: results, ``name → array``: ``currents_a`` (batch, cols), ``power_w`` (batch,),
            ``driver_currents_a`` (batch, rows, ends), ``power_breakdown_w/<part>`` (batch,),
            and with node voltages ``wl_voltages_v`` and ``bl_voltages_v`` (batch, rows, cols).
        from_cache: whether the result was read from the result cache.
    """

    job_id: str
    attempt: int
    aid: str
    ok: bool
    kind: str
    message: str = ""
    ngspice_version: str = ""
    ngspice_output: str = ""
    options: dict = field(default_factory=dict)
    netlist_sha256: str = ""
    elapsed_s: float = 0.0
    worker: str = ""
    arrays: dict = field(default_factory=dict)
    from_cache: bool = False

    @property
    def retryable(self) -> bool:
        """Whether another attempt could succeed."""
        return not self.ok and self.kind != "not-installed"


def classify_failure(exc: SimulationError) -> str:
    """Return the failure kind of an ngspice error (see :data:`FAILURE_KINDS`)."""
    text = str(exc).lower()
    if isinstance(exc, SimulatorNotFoundError):
        return "not-installed"
    if "timed out" in text:
        return "timeout"
    # A negative exit code is the signal that killed the ngspice program.
    if "crashed" in text or re.search(r"exit code -\d+", text):
        return "crash"
    if isinstance(exc, ConvergenceError):
        return "convergence"
    return "error"


def worker_name() -> str:
    """Return ``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@functools.lru_cache(maxsize=1)
def _batch_version() -> str:
    from spicecross.sim.ngspice import batch_version

    return batch_version()


def run_batch_mode(netlist: str, timeout: float) -> RunOutput:
    """Run ``netlist`` in a new ``ngspice -b`` process, killed after ``timeout`` s."""
    from spicecross.sim.ngspice import run_batch

    try:
        vectors, output = run_batch(netlist, timeout=timeout)
    except SimulationError as exc:
        # run_batch does not ask the program for its version; the failure record needs it.
        if not exc.ngspice_version and not isinstance(exc, SimulatorNotFoundError):
            exc.ngspice_version = _batch_version()
        raise
    return RunOutput(vectors, output, _batch_version(), "batch")


def failure(request: AttemptRequest, kind: str, message: str, *, version: str = "", output: str = "",
            elapsed: float = 0.0) -> AttemptOutcome:
    """Return the failed outcome of ``request``."""
    return AttemptOutcome(job_id=request.job.job_id, attempt=request.attempt, aid=request.aid, ok=False,
                          kind=kind, message=message, ngspice_version=version, ngspice_output=output,
                          options=dict(request.options), netlist_sha256=request.netlist_sha256,
                          elapsed_s=elapsed, worker=worker_name())


def execute_attempt(request: AttemptRequest, run) -> AttemptOutcome:
    """Run one attempt with ``run(netlist) -> RunOutput`` and turn its vectors into result arrays.

    An ngspice failure (a :class:`~spicecross.errors.SimulationError` from ``run``)
    becomes a failed outcome, not an exception. ``run`` must itself isolate ngspice
    in a child process with a timeout, because this function runs inside the worker.
    """
    job = request.job
    start = time.perf_counter()
    try:
        run_output = run(request.netlist)
        spec = job.spec()
        result = result_from_vectors(spec, build_topology(spec), job.voltages, run_output,
                                     time.perf_counter() - start, request.options)
    except SimulationError as exc:
        return failure(request, classify_failure(exc), str(exc), version=exc.ngspice_version or "",
                       output=exc.output or "", elapsed=time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    arrays = {"currents_a": result.currents, "power_w": result.power,
              "driver_currents_a": result.driver_currents}
    for part, values in result.power_breakdown.items():
        arrays[f"power_breakdown_w/{part}"] = values
    if job.save_voltages:
        arrays["wl_voltages_v"] = result.wl_voltages
        arrays["bl_voltages_v"] = result.bl_voltages
    bad = [name for name, values in arrays.items() if not np.all(np.isfinite(values))]
    if bad:
        return failure(request, "error", f"ngspice returned non-finite values in {', '.join(bad)}",
                       version=run_output.version, output=run_output.output, elapsed=elapsed)
    return AttemptOutcome(job_id=job.job_id, attempt=request.attempt, aid=request.aid, ok=True, kind="ok",
                          ngspice_version=run_output.version, ngspice_output=run_output.output,
                          options=dict(request.options), netlist_sha256=request.netlist_sha256,
                          elapsed_s=elapsed, worker=worker_name(), arrays=arrays)


def execute_attempt_batch(request: AttemptRequest) -> AttemptOutcome:
    """Run one attempt in batch mode; this is the task that Dask workers execute."""
    return execute_attempt(request, functools.partial(run_batch_mode, timeout=request.timeout))
