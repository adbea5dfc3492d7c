"""A content-addressed cache of ngspice results, shared by every sweep that names its folder.

The key of an entry is the SHA-256 of the netlist text, the ngspice mode and the
ngspice version, so a result is reused only for the exact netlist that produced
it on the same simulator. An entry is an HDF5 file ``<key[:2]>/<key>.h5`` with
the result arrays and the attempt's details. It is written atomically like the
store's job files, so two sweeps that write the same key at once leave one whole
file with the same content.
An entry written without node voltages is not used for a job that requests them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from spicecross.sweep.attempt import AttemptOutcome
from spicecross.sweep.provenance import utc_now
from spicecross.sweep.store import read_h5, write_h5_atomic

logger = logging.getLogger(__name__)

CACHE_FORMAT = "spicecross-result-cache/1"
_VOLTAGE_ARRAYS = ("wl_voltages_v", "bl_voltages_v")


def cache_key(netlist: str, mode: str, ngspice_version: str) -> str:
    """Return the cache key (SHA-256 hex) of a netlist run in ``mode`` on ``ngspice_version``."""
    digest = hashlib.sha256()
    for part in (netlist, mode, ngspice_version):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


class ResultCache:
    """Results of earlier ngspice runs, found by :func:`cache_key`.

    Args:
        folder: the cache folder; created on the first write.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()

    def path(self, key: str) -> Path:
        """Return the file of an entry."""
        return self.folder / key[:2] / f"{key}.h5"

    def get(self, key: str, *, need_voltages: bool) -> AttemptOutcome | None:
        """Return the cached outcome for ``key``, or None if absent, unreadable or without needed voltages.

        The outcome's ``job_id`` and ``attempt`` are those of the run that made the
        entry; the caller sets its own.
        """
        path = self.path(key)
        if not path.exists():
            return None
        try:
            entry = read_h5(path)
        except (OSError, KeyError, ValueError) as exc:
            logger.warning("result cache entry %s is unreadable (%s); running ngspice instead", path, exc)
            return None
        attrs = entry["attrs"]
        if attrs.get("format") != CACHE_FORMAT:
            return None
        arrays = {name.removeprefix("results/"): values for name, values in entry["arrays"].items()}
        if need_voltages and not all(name in arrays for name in _VOLTAGE_ARRAYS):
            return None
        if not need_voltages:
            for name in _VOLTAGE_ARRAYS:
                arrays.pop(name, None)
        return AttemptOutcome(job_id=attrs.get("job_id", ""), attempt=int(attrs.get("attempt", 0)),
                              aid=attrs.get("convergence_aid", "none"), ok=True, kind="ok",
                              ngspice_version=attrs.get("ngspice_version", ""),
                              ngspice_output=entry["texts"].get("ngspice/output", ""),
                              options=json.loads(attrs.get("ngspice_options", "{}")),
                              netlist_sha256=attrs.get("netlist_sha256", ""),
                              elapsed_s=float(attrs.get("elapsed_s", 0.0)), worker=attrs.get("worker", ""),
                              arrays=arrays, from_cache=True)

    def put(self, key: str, outcome: AttemptOutcome) -> None:
        """Store a successful outcome under ``key``, unless an entry with node voltages is there already."""
        if not outcome.ok:
            raise ValueError(f"only successful outcomes are cached; job {outcome.job_id} failed "
                             f"({outcome.kind})")
        path = self.path(key)
        has_voltages = all(name in outcome.arrays for name in _VOLTAGE_ARRAYS)
        if path.exists() and not has_voltages:
            return
        attrs = {"format": CACHE_FORMAT, "job_id": outcome.job_id, "attempt": outcome.attempt,
                 "convergence_aid": outcome.aid, "ngspice_version": outcome.ngspice_version,
                 "ngspice_options": json.dumps(outcome.options, sort_keys=True),
                 "netlist_sha256": outcome.netlist_sha256, "elapsed_s": outcome.elapsed_s,
                 "worker": outcome.worker, "created_utc": utc_now()}
        arrays = {f"results/{name}": values for name, values in outcome.arrays.items()}
        try:
            write_h5_atomic(path, attrs=attrs, arrays=arrays,
                            texts={"ngspice/output": outcome.ngspice_output})
        except OSError as exc:
            # A full or read-only cache must not fail the sweep: the result is in the store.
            logger.warning("cannot write result cache entry %s (%s); continuing without it", path, exc)
