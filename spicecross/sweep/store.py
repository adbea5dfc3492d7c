"""The on-disk store of a sweep: one HDF5 file per finished job, plus a JSON manifest.

Layout of an output folder::

    manifest.json        the config and every job's id and sweep coordinates
    jobs/<job_id>.h5     a successful job (the set of these files is the resume state)
    failed/<job_id>.h5   a failed job: error, ngspice output and netlist
    failed/<job_id>.cir  the netlist of the last failed attempt, to rerun by hand
    summary.json         the summary of the last run

Why HDF5 (through h5py): a job's results are a few float arrays of different
shapes (bit-line currents, power and its parts, optional node voltages) plus
provenance that belongs with them. HDF5 keeps typed n-dimensional arrays with
their units and provenance as attributes in one self-describing file that
numpy, MATLAB, Julia and ``h5dump`` all read. One file per job makes each write
independent. A job file is written to a temporary name in the same folder and
renamed into place (``os.replace``, atomic on POSIX). So an interrupted sweep
leaves either a whole file or none, and a rerun skips exactly the jobs whose
file exists.

A job file contains ``inputs/voltages_v`` (batch, rows) V, ``inputs/conductances_s``
(rows, cols) S and ``results/…`` (see :class:`~spicecross.sweep.attempt.AttemptOutcome`),
each dataset with a ``units`` attribute. Its root attributes contain ``status``
(``ok`` or ``failed``), the job's id, index and coordinates, and its provenance
(:func:`~spicecross.sweep.provenance.job_provenance`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from spicecross.netlist.writer import write_text_atomic
from spicecross.sweep.attempt import AttemptOutcome
from spicecross.sweep.jobs import SweepJob

FORMAT = "spicecross-sweep-job/1"
MANIFEST_FORMAT = "spicecross-sweep-manifest/1"
_UNITS = {"_a": "A", "_w": "W", "_v": "V", "_s": "S"}
#: Arrays with more elements than this are stored gzip-compressed.
_COMPRESS_ABOVE = 4096


def units_of(name: str) -> str:
    """Return the unit of a dataset from its name's suffix (``results/currents_a`` → ``A``)."""
    if "power_breakdown_w/" in name:
        return "W"
    leaf = name.rsplit("/", 1)[-1]
    for suffix, unit in _UNITS.items():
        if leaf.endswith(suffix):
            return unit
    return ""


def _attr_value(value):
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return value


def write_h5_atomic(path: Path, *, attrs: dict, arrays: dict | None = None,
                    texts: dict | None = None) -> None:
    """Write an HDF5 file through a temporary file in the same folder and a rename.

    Args:
        path: the file to create or replace.
        attrs: root attributes; dicts and lists are stored as JSON strings.
        arrays: ``{dataset path: array}``; each gets a ``units`` attribute from its name.
        texts: ``{dataset path: str}``, stored as UTF-8 strings.
    """
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as handle:
            for key, value in attrs.items():
                handle.attrs[key] = _attr_value(value)
            for name, values in (arrays or {}).items():
                values = np.asarray(values)
                compression = "gzip" if values.size > _COMPRESS_ABOVE else None
                dataset = handle.create_dataset(name, data=values, compression=compression)
                dataset.attrs["units"] = units_of(name)
            for name, text in (texts or {}).items():
                handle.create_dataset(name, data=text, dtype=h5py.string_dtype("utf-8"))
        with open(tmp, "rb+") as raw:
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_h5(path: Path) -> dict:
    """Read an HDF5 file written by :func:`write_h5_atomic`.

    Returns:
        ``{"attrs": {...}, "arrays": {path: ndarray}, "texts": {path: str}}``.
    """
    import h5py

    out = {"attrs": {}, "arrays": {}, "texts": {}}
    with h5py.File(path, "r") as handle:
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}

        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                if h5py.check_string_dtype(item.dtype) is not None:
                    out["texts"][name] = item.asstr()[()]
                else:
                    out["arrays"][name] = item[()]

        handle.visititems(visit)
    return out


class SweepStore:
    """The output folder of one sweep (see the module docstring for its layout).

    Args:
        root: the folder; created when missing.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.failed_dir = self.root / "failed"

    @property
    def manifest_path(self) -> Path:
        """Path of ``manifest.json``."""
        return self.root / "manifest.json"

    def job_path(self, job_id: str) -> Path:
        """Return the file of a successful job."""
        return self.jobs_dir / f"{job_id}.h5"

    def failure_path(self, job_id: str) -> Path:
        """Return the file of a failed job."""
        return self.failed_dir / f"{job_id}.h5"

    def prepare(self, config_dict: dict, jobs: list[SweepJob]) -> None:
        """Create the folders, delete temporary files of an interrupted run, write the manifest."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.failed_dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.root, self.jobs_dir, self.failed_dir):
            for stale in folder.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        manifest = {"format": MANIFEST_FORMAT, "config": config_dict,
                    "jobs": [{"index": job.index, "job_id": job.job_id, **job.labels} for job in jobs]}
        write_text_atomic(self.manifest_path, json.dumps(manifest, indent=1))

    def finished_ids(self) -> set[str]:
        """Return the ids of jobs that have a result file."""
        if not self.jobs_dir.exists():
            return set()
        return {path.stem for path in self.jobs_dir.glob("*.h5")}

    def failed_ids(self) -> set[str]:
        """Return the ids of jobs whose last run failed."""
        if not self.failed_dir.exists():
            return set()
        return {path.stem for path in self.failed_dir.glob("*.h5")}

    def write_result(self, job: SweepJob, outcome: AttemptOutcome, provenance: dict) -> Path:
        """Write a successful job atomically and drop any failure record it had."""
        arrays = {"inputs/voltages_v": job.voltages, "inputs/conductances_s": job.conductances}
        arrays.update({f"results/{name}": values for name, values in outcome.arrays.items()})
        attrs = {"format": FORMAT, "status": "ok", "job_id": job.job_id, "index": job.index,
                 **job.labels, **provenance}
        path = self.job_path(job.job_id)
        write_h5_atomic(path, attrs=attrs, arrays=arrays, texts={"ngspice/output": outcome.ngspice_output})
        self.failure_path(job.job_id).unlink(missing_ok=True)
        self.failure_path(job.job_id).with_suffix(".cir").unlink(missing_ok=True)
        return path

    def write_failure(self, job: SweepJob, outcome: AttemptOutcome, netlist: str, provenance: dict) -> Path:
        """Write a failed job: error, ngspice output and the last netlist (also as a .cir file)."""
        attrs = {"format": FORMAT, "status": "failed", "job_id": job.job_id, "index": job.index,
                 **job.labels, **provenance, "failure_kind": outcome.kind,
                 "failure_message": outcome.message}
        arrays = {"inputs/voltages_v": job.voltages, "inputs/conductances_s": job.conductances}
        path = self.failure_path(job.job_id)
        write_text_atomic(path.with_suffix(".cir"), netlist)
        write_h5_atomic(path, attrs=attrs, arrays=arrays,
                        texts={"ngspice/output": outcome.ngspice_output, "ngspice/netlist": netlist})
        return path

    def read_job(self, job_id: str) -> dict:
        """Read a successful job's file (see :func:`read_h5`)."""
        path = self.job_path(job_id)
        if not path.exists():
            raise FileNotFoundError(f"job {job_id} has no result in {self.jobs_dir}: it has not "
                                    "finished, or it failed (see the failed/ folder)")
        return read_h5(path)

    def write_summary(self, summary: dict) -> None:
        """Write ``summary.json`` atomically."""
        write_text_atomic(self.root / "summary.json", json.dumps(summary, indent=1))
