"""Provenance of a job's result: what ran, with which simulator and options, and when.

The fields are stored as HDF5 attributes of every job file, so one file is
enough to tell how its numbers were made and to rebuild its netlist.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime

import numpy as np

import spicecross
from spicecross.sweep.attempt import AttemptOutcome
from spicecross.sweep.jobs import SweepJob


def utc_now() -> str:
    """Return the current UTC time in ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def job_provenance(job: SweepJob, outcome: AttemptOutcome) -> dict:
    """Return the provenance attributes of ``job`` as run by ``outcome``.

    Keys:

    * netlist: ``netlist_sha256``.
    * device: ``device_name``, ``device_params`` (JSON), ``device_v_ref_v`` and, for a
      user's subcircuit, ``device_subckt_sha256`` and ``device_source``.
    * simulator: ``ngspice_version``, ``ngspice_mode``, ``ngspice_options`` (JSON, as
      run, aids included), ``convergence_aid``, ``attempts``.
    * software and run: ``seed``, ``spicecross_version``, ``python_version``,
      ``numpy_version``, ``created_utc``, ``worker`` (``host:pid``), ``result_source``
      (``run`` or ``cache``), ``elapsed_s`` (s).
    """
    device = job.device
    attrs = {
        "netlist_sha256": outcome.netlist_sha256,
        "device_name": device["name"],
        "device_params": json.dumps(device["params"], sort_keys=True),
        "device_v_ref_v": float(device["v_ref"]),
        "ngspice_version": outcome.ngspice_version or "unknown",
        "ngspice_mode": job.mode,
        "ngspice_options": json.dumps(outcome.options, sort_keys=True),
        "convergence_aid": outcome.aid,
        "attempts": int(outcome.attempt + 1),
        "seed": int(job.seed),
        "spicecross_version": spicecross.__version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "created_utc": utc_now(),
        "worker": outcome.worker,
        "result_source": "cache" if outcome.from_cache else "run",
        "elapsed_s": float(outcome.elapsed_s),
    }
    if "subckt_text" in device:
        attrs["device_subckt_sha256"] = hashlib.sha256(device["subckt_text"].encode()).hexdigest()
        attrs["device_source"] = str(device.get("source", ""))
    return attrs
