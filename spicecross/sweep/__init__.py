"""Parameter sweeps of crossbars in ngspice: parallel, resumable, cached, with contained failures.

A sweep (:class:`SweepConfig`, read from TOML by :func:`load_config`) expands
into independent jobs (:func:`make_jobs`). Each job is one ngspice load that
solves a batch of input vectors. :func:`run_sweep` runs the jobs on local
worker processes or an existing Dask cluster, retries failures with
convergence aids, and writes each finished job to an HDF5 store
(:class:`SweepStore`) that a rerun resumes from.
"""

from spicecross.sweep.cache import ResultCache, cache_key
from spicecross.sweep.config import SweepConfig, load_config, parse_config
from spicecross.sweep.engine import SweepSummary, run_sweep
from spicecross.sweep.executor import DaskExecutor, LocalExecutor, SchedulerUnavailableError
from spicecross.sweep.jobs import SweepJob, make_jobs, make_state
from spicecross.sweep.store import SweepStore

__all__ = ["DaskExecutor", "LocalExecutor", "ResultCache", "SchedulerUnavailableError", "SweepConfig",
           "SweepJob", "SweepStore", "SweepSummary", "cache_key", "load_config", "make_jobs", "make_state",
           "parse_config", "run_sweep"]
