"""Running a sweep: skip stored jobs, serve cached ones, run the rest, retry failures, write each result.

:func:`run_sweep` keeps two attempts per worker in flight and formats each
netlist just before it is submitted, because a 64×64 netlist of 50 vectors is
about 0.8 MB of text. Every finished job is written to the store as soon as it
arrives, so an interrupted sweep loses at most the attempts that were running.
A failed attempt is retried before new jobs start, with the next convergence
aid (:mod:`spicecross.sweep.attempt`). A job that fails every attempt is written
to the store's ``failed/`` folder, and the sweep goes on.
"""

from __future__ import annotations

import logging
import queue
import shutil
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from spicecross.sweep.attempt import (
    LOOSE_TOLERANCES,
    AttemptOutcome,
    AttemptRequest,
    aid_for_attempt,
    make_request,
)
from spicecross.sweep.cache import ResultCache, cache_key
from spicecross.sweep.config import SweepConfig
from spicecross.sweep.executor import make_executor
from spicecross.sweep.jobs import SweepJob, make_jobs
from spicecross.sweep.provenance import job_provenance
from spicecross.sweep.store import SweepStore

logger = logging.getLogger(__name__)

#: Attempts kept in flight per worker, so that the next netlist is ready when a worker finishes.
_IN_FLIGHT_PER_WORKER = 2


class SweepProgress(Protocol):
    """Receives progress events; the CLI draws a tqdm bar from them."""

    def start(self, total: int, skipped: int) -> None:
        """Record that the sweep has ``total`` jobs, ``skipped`` of them already in the store."""

    def update(self, status: str, job: SweepJob) -> None:
        """Record that ``job`` ended with ``status`` ``done``, ``cached`` or ``failed``."""


@dataclass
class JobFailure:
    """A job that failed every attempt.

    Attributes:
        job_id: the job.
        index: its position in the sweep.
        labels: its sweep coordinates.
        kind: failure kind of the last attempt (``convergence``, ``timeout``, ``crash``, …).
        message: the first line of the last error.
        attempts: attempts made.
        netlist: the file holding the last attempt's netlist.
    """

    job_id: str
    index: int
    labels: dict
    kind: str
    message: str
    attempts: int
    netlist: str


@dataclass
class SweepSummary:
    """Counts and timing of one run of a sweep.

    Attributes:
        name: the sweep's name.
        output: the store folder.
        executor: where the attempts ran.
        ngspice_version: the ngspice that ran them.
        mode: ``batch`` or ``shared``.
        jobs_total: jobs in the sweep.
        done: jobs run by ngspice in this run and stored.
        skipped: jobs already in the store before this run.
        cached: jobs served from the result cache.
        failed: jobs that failed every attempt.
        retried: jobs that succeeded only after a retry.
        aids: convergence aid → number of jobs that succeeded with it.
        ngspice_runs: ngspice runs started, failed ones included.
        vectors_solved: input vectors of the jobs finished in this run (run or cached).
        wall_time_s: wall time of the run, s.
        interrupted: whether the run was stopped before every job ended.
    """

    name: str
    output: str
    executor: str = ""
    ngspice_version: str = ""
    mode: str = "batch"
    jobs_total: int = 0
    done: int = 0
    skipped: int = 0
    cached: int = 0
    failed: list = field(default_factory=list)
    retried: int = 0
    aids: dict = field(default_factory=dict)
    ngspice_runs: int = 0
    vectors_solved: int = 0
    wall_time_s: float = 0.0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Whether every job of the sweep is in the store."""
        return not self.failed and not self.interrupted

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        data = asdict(self)
        data["failed_count"] = len(self.failed)
        return data

    def format_text(self) -> str:
        """Return a few lines for a terminal."""
        lines = [
            f"sweep {self.name}: {self.jobs_total} jobs in {self.output}",
            f"  done {self.done}, skipped (already stored) {self.skipped}, served from cache "
            f"{self.cached}, failed {len(self.failed)}"
            + (f", succeeded after a retry {self.retried}" if self.retried else ""),
            f"  total solves: {self.vectors_solved} input vectors in {self.ngspice_runs} ngspice runs",
            f"  wall time {self.wall_time_s:.1f} s on {self.executor}"
            + (f", {self.ngspice_version}" if self.ngspice_version else ""),
        ]
        if self.aids:
            used = ", ".join(f"{aid} ({count})" for aid, count in sorted(self.aids.items()))
            lines.append(f"  convergence aids used: {used}")
        for item in self.failed:
            lines.append(f"  FAILED job {item['index']} ({item['job_id'][:12]}): {item['kind']} after "
                         f"{item['attempts']} attempts: {item['message']} (netlist {item['netlist']})")
        if self.interrupted:
            lines.append("  interrupted: run the same command again to finish the remaining jobs")
        return "\n".join(lines)


def default_output(config: SweepConfig) -> Path:
    """Return the store folder used when neither the config nor the caller names one."""
    return Path("sweeps") / config.name


class _Run:
    """State of one run of :func:`run_sweep`."""

    def __init__(self, config: SweepConfig, store: SweepStore, cache: ResultCache | None, executor,
                 summary: SweepSummary, progress: SweepProgress | None):
        self.config = config
        self.store = store
        self.cache = cache
        self.executor = executor
        self.summary = summary
        self.progress = progress
        self.outcomes: queue.Queue = queue.Queue()
        self.pending: deque = deque()
        self.requests: dict[tuple[str, int], AttemptRequest] = {}
        self.jobs: dict[str, SweepJob] = {}
        self.in_flight = 0
        self.aids: Counter = Counter()

    def key(self, request: AttemptRequest) -> str:
        return cache_key(request.netlist, self.config.mode, self.summary.ngspice_version)

    def from_cache(self, request: AttemptRequest) -> AttemptOutcome | None:
        """Return a cached outcome of ``request`` or of a later attempt of its job, or None.

        A later attempt with looser tolerances is not looked up: its less accurate
        result is served only after the tighter attempts have failed again.
        """
        job = request.job
        for later in range(request.attempt, self.config.retries + 1):
            if later > request.attempt and aid_for_attempt(later)[0] == LOOSE_TOLERANCES:
                break
            candidate = request if later == request.attempt else make_request(job, later, self.config.timeout)
            hit = self.cache.get(self.key(candidate), need_voltages=job.save_voltages)
            if hit is not None:
                hit.job_id, hit.attempt = job.job_id, later
                return hit
        return None

    def dispatch(self) -> None:
        """Submit pending attempts until the executor has enough in flight."""
        limit = _IN_FLIGHT_PER_WORKER * self.executor.slots
        while self.pending and self.in_flight < limit:
            job, attempt = self.pending.popleft()
            request = make_request(job, attempt, self.config.timeout)
            if self.cache is not None:
                hit = self.from_cache(request)
                if hit is not None:
                    self.finish(job, hit)
                    continue
            self.requests[job.job_id, attempt] = request
            self.executor.submit(request, self.outcomes.put)
            self.in_flight += 1

    def finish(self, job: SweepJob, outcome: AttemptOutcome) -> None:
        """Store a successful outcome and count it."""
        self.store.write_result(job, outcome, job_provenance(job, outcome))
        if outcome.from_cache:
            self.summary.cached += 1
            status = "cached"
        else:
            self.summary.done += 1
            status = "done"
        if outcome.attempt > 0 and not outcome.from_cache:
            self.summary.retried += 1
        if outcome.aid != "none":
            self.aids[outcome.aid] += 1
        self.summary.vectors_solved += job.batch
        if self.progress is not None:
            self.progress.update(status, job)

    def handle(self, outcome: AttemptOutcome) -> None:
        """Store, cache, retry or report one returned attempt."""
        self.in_flight -= 1
        self.summary.ngspice_runs += 1
        job = self.jobs[outcome.job_id]
        request = self.requests.pop((outcome.job_id, outcome.attempt))
        if outcome.ok:
            if self.cache is not None:
                self.cache.put(self.key(request), outcome)
            self.finish(job, outcome)
            return
        first_line = outcome.message.strip().splitlines()[0] if outcome.message.strip() else outcome.kind
        if outcome.retryable and outcome.attempt < self.config.retries:
            logger.warning("job %d (%s) attempt %d failed (%s: %s); retrying with convergence aid %r",
                           job.index, job.job_id[:12], outcome.attempt + 1, outcome.kind, first_line,
                           aid_for_attempt(outcome.attempt + 1)[0])
            # Retries go first, so that a failing job ends early and is reported.
            self.pending.appendleft((job, outcome.attempt + 1))
            return
        logger.error("job %d (%s) failed after %d attempts (%s: %s); netlist saved in %s", job.index,
                     job.job_id[:12], outcome.attempt + 1, outcome.kind, first_line,
                     self.store.failure_path(job.job_id).with_suffix(".cir"))
        provenance = job_provenance(job, outcome)
        path = self.store.write_failure(job, outcome, request.netlist, provenance)
        self.summary.failed.append(asdict(JobFailure(
            job_id=job.job_id, index=job.index, labels=job.labels, kind=outcome.kind, message=first_line,
            attempts=outcome.attempt + 1, netlist=str(path.with_suffix(".cir")))))
        if self.progress is not None:
            self.progress.update("failed", job)

    def run(self, todo: list[SweepJob]) -> None:
        for job in todo:
            self.jobs[job.job_id] = job
            self.pending.append((job, 0))
        self.dispatch()
        while self.in_flight:
            try:
                outcome = self.outcomes.get(timeout=1.0)
            except queue.Empty:
                continue
            self.handle(outcome)
            self.dispatch()


def run_sweep(config: SweepConfig, *, output: str | Path | None = None, workers: int | None = None,
              scheduler: str | None = None, executor=None,
              progress: SweepProgress | None = None) -> SweepSummary:
    """Run every job of ``config`` that is not in the store yet, and return the summary.

    Args:
        config: the sweep.
        output: store folder; overrides ``config.output`` (default ``sweeps/<name>``).
        workers: local workers; overrides ``config.workers``.
        scheduler: Dask scheduler address; overrides ``config.scheduler``.
        executor: an executor to use in place of a new one (it is not closed).
        progress: receives a start event and one event per finished job.

    Raises:
        SchedulerUnavailableError: the Dask scheduler does not respond or has no workers.
        SimulatorNotFoundError: ngspice is not installed where the workers run.
    """
    start = time.perf_counter()
    root = Path(output) if output is not None else (config.output or default_output(config))
    jobs = make_jobs(config)
    store = SweepStore(root)
    created = not root.exists()
    store.prepare(config.to_dict(), jobs)
    finished = store.finished_ids()
    todo = [job for job in jobs if job.job_id not in finished]
    summary = SweepSummary(name=config.name, output=str(root), mode=config.mode, jobs_total=len(jobs),
                           skipped=len(jobs) - len(todo))
    if progress is not None:
        progress.start(len(jobs), summary.skipped)
    if not todo:
        summary.wall_time_s = time.perf_counter() - start
        summary.executor = "none (every job was already stored)"
        store.write_summary(summary.to_dict())
        return summary

    own = executor is None
    if own:
        try:
            executor = make_executor(workers=workers or config.workers, mode=config.mode,
                                     timeout=config.timeout, scheduler=scheduler or config.scheduler,
                                     connect_timeout=config.connect_timeout)
        except BaseException:
            # Nothing ran: do not leave a store folder that holds only the manifest.
            if created:
                shutil.rmtree(root, ignore_errors=True)
            raise
    cache = ResultCache(config.cache) if config.cache else None
    state = _Run(config, store, cache, executor, summary, progress)
    try:
        summary.executor = executor.description
        summary.ngspice_version = executor.ngspice_version()
        logger.info("sweep %s: %d jobs, %d already stored, running on %s with %s", config.name, len(jobs),
                    summary.skipped, summary.executor, summary.ngspice_version)
        state.run(todo)
    except BaseException:
        summary.interrupted = True
        raise
    finally:
        if own:
            executor.close()
        summary.aids = dict(state.aids)
        summary.wall_time_s = time.perf_counter() - start
        store.write_summary(summary.to_dict())
        logger.info("sweep %s stopped: %d done, %d cached, %d failed, %.1f s", config.name, summary.done,
                    summary.cached, len(summary.failed), summary.wall_time_s)
    return summary
