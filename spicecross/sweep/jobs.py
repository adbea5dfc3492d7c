"""Jobs of a sweep: one crossbar state and one batch of input vectors, as plain data.

A :class:`SweepJob` holds only numbers, strings and numpy arrays (the device's
subcircuit is carried as text, not as a path), so it pickles to a Dask worker on
another machine. Its ``job_id`` is a SHA-256 of everything that determines its
result, so a rerun finds the jobs it already finished in the store even when the
config's lists were reordered or extended.

Random states and inputs are drawn from generators seeded by (seed, size, state
index[, batch index]) and not by the job's position in the sweep. So every
wire-resistance value gets the same conductance states, and a resistance sweep
compares like with like. Adding a value to a list leaves the other jobs unchanged.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spicecross.crossbar.spec import CrossbarSpec
from spicecross.devices.library import DeviceModel, builtin_device, load_subckt_device
from spicecross.netlist.writer import CrossbarNetlist, format_crossbar_netlist
from spicecross.sweep.config import STATE_KINDS, DeviceConfig, SweepConfig

#: Integer tags that keep the random streams of states and inputs apart.
_STREAM_STATE, _STREAM_INPUT = 1, 2


@dataclass(frozen=True)
class SweepJob:
    """One ngspice load of a sweep: a crossbar state and a batch of input vectors.

    Attributes:
        job_id: SHA-256 (hex) of the job's description; names its file in the store.
        index: position in the sweep, for progress and tables.
        labels: the sweep coordinates (size, resistances in Ω, state kind and index,
            batch index), stored with the result.
        device: ``name``, ``v_ref`` (V), ``params`` and, for a user's model, ``subckt_text``
            and ``subckt``.
        conductances: device conductances at ``v_ref``, (rows, cols), S.
        resistances: ``r_word``, ``r_bit``, ``r_source``, ``r_sense`` per segment, Ω.
        drive: ``west`` or ``both``.
        voltages: input vectors, (batch, rows), V.
        options: ngspice ``.options`` from the config, before any convergence aid.
        mode: ``batch`` or ``shared``.
        save_voltages: whether node voltages are kept.
        seed: the sweep's seed.
    """

    job_id: str
    index: int
    labels: dict
    device: dict
    conductances: np.ndarray
    resistances: dict
    drive: str
    voltages: np.ndarray
    options: dict = field(default_factory=dict)
    mode: str = "batch"
    save_voltages: bool = False
    seed: int = 0

    @property
    def batch(self) -> int:
        """Number of input vectors."""
        return self.voltages.shape[0]

    def spec(self) -> CrossbarSpec:
        """Build the crossbar of this job."""
        return CrossbarSpec(self.conductances, device=device_from_dict(self.device), drive=self.drive,
                            **self.resistances)

    def netlist(self, extra_options: dict | None = None) -> CrossbarNetlist:
        """Format this job's netlist, with ``extra_options`` merged over the job's options."""
        return format_crossbar_netlist(self.spec(), self.voltages,
                                       options={**self.options, **(extra_options or {})})


def build_device(device: DeviceConfig) -> DeviceModel:
    """Build the device model that a config names (a built-in law or a ``.subckt`` file)."""
    if device.is_builtin:
        return builtin_device(device.name, v_ref=device.v_ref, **device.params)
    return load_subckt_device(Path(device.name), subckt=device.subckt, v_ref=device.v_ref,
                              **device.params)


def device_to_dict(device: DeviceConfig) -> dict:
    """Return the job's plain-data description of ``device`` (a file's text is embedded)."""
    data = {"name": device.name, "v_ref": device.v_ref, "params": dict(device.params)}
    if not device.is_builtin:
        model = build_device(device)
        data.update(name=model.name, subckt=model.subckt_name, subckt_text=model.subckt_text,
                    source=device.name)
    return data


def device_from_dict(data: dict) -> DeviceModel:
    """Build a device model from :func:`device_to_dict` output."""
    if "subckt_text" not in data:
        return builtin_device(data["name"], v_ref=data["v_ref"], **data["params"])
    return load_subckt_device(data["subckt_text"], name=data["name"], subckt=data["subckt"],
                              v_ref=data["v_ref"], **data["params"])


# --------------------------------------------------------------- states ----

def make_state(kind: str, rows: int, cols: int, g_min: float, g_max: float,
               rng: np.random.Generator | None = None) -> np.ndarray:
    """Return a (rows, cols) conductance state in S.

    * ``random``: uniform in [g_min, g_max], drawn from ``rng``.
    * ``all-on``: g_max everywhere. ``all-off``: g_min everywhere.
    * ``checkerboard``: g_max where row + col is even, g_min elsewhere.
    * ``ramp``: rises linearly from g_min at (0, 0) to g_max at the last cell, row by row.
    """
    if kind == "random":
        if rng is None:
            raise ValueError("make_state('random', ...) needs rng=numpy.random.Generator")
        return rng.uniform(g_min, g_max, size=(rows, cols))
    if kind == "all-on":
        return np.full((rows, cols), g_max)
    if kind == "all-off":
        return np.full((rows, cols), g_min)
    if kind == "checkerboard":
        i, j = np.indices((rows, cols))
        return np.where((i + j) % 2 == 0, g_max, g_min).astype(float)
    if kind == "ramp":
        steps = rows * cols - 1
        fraction = np.arange(rows * cols, dtype=float) / steps if steps else np.zeros(1)
        return (g_min + (g_max - g_min) * fraction).reshape(rows, cols)
    raise ValueError(f"state kind {kind!r} is invalid: use one of {', '.join(STATE_KINDS)}")


def load_inputs(path: Path, rows: int) -> np.ndarray:
    """Load input vectors (n, rows) in V from a ``.npy`` or ``.csv`` file."""
    if path.suffix == ".npy":
        values = np.load(path, allow_pickle=False)
    else:
        from spicecross.csvmatrix import load_csv_matrix

        values = load_csv_matrix(path)
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != rows or values.shape[0] < 1:
        raise ValueError(f"input file {path} has shape {values.shape}, expected (n, {rows}): one "
                         f"column per word line of the {rows}-row arrays in [array] sizes")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"input file {path} contains a non-finite voltage")
    return values


# ----------------------------------------------------------------- jobs ----

def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float64).tobytes()).hexdigest()


def job_id_of(device: dict, conductances: np.ndarray, resistances: dict, drive: str,
              voltages: np.ndarray, options: dict, mode: str, save_voltages: bool) -> str:
    """Return the SHA-256 (hex) of everything that determines a job's result."""
    description = {
        "format": "spicecross-sweep-job/1",
        "device": {k: v for k, v in device.items() if k != "source"},
        "conductances": [list(conductances.shape), _digest(conductances)],
        "voltages": [list(voltages.shape), _digest(voltages)],
        "resistances": resistances, "drive": drive, "options": options, "mode": mode,
        "save_voltages": save_voltages,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def _states(config: SweepConfig, rows: int, cols: int):
    """Yield (kind, state index, conductances) for one array size."""
    for kind_index, kind in enumerate(config.state_kinds):
        if kind == "random":
            for k in range(config.states_per_point):
                rng = np.random.default_rng([config.seed, _STREAM_STATE, rows, cols, kind_index, k])
                yield kind, k, make_state(kind, rows, cols, config.g_min, config.g_max, rng)
        else:
            yield kind, 0, make_state(kind, rows, cols, config.g_min, config.g_max)


def _input_batches(config: SweepConfig, rows: int, cols: int, state_key: tuple):
    """Yield (batch index, voltages) for one state."""
    if config.input_source == "file":
        values = load_inputs(config.input_file, rows)
        for b, start in enumerate(range(0, values.shape[0], config.vectors_per_job)):
            yield b, values[start:start + config.vectors_per_job]
        return
    for b in range(config.batches):
        rng = np.random.default_rng([config.seed, _STREAM_INPUT, rows, cols, *state_key, b])
        yield b, rng.uniform(0.0, config.v_max, size=(config.vectors_per_job, rows))


def make_jobs(config: SweepConfig) -> list[SweepJob]:
    """Return every job of the sweep, in a fixed order: size, resistances, state, batch."""
    device = device_to_dict(config.device)
    jobs = []
    for rows, cols in config.sizes:
        states = list(_states(config, rows, cols))
        batches = {}
        for kind, k, _ in states:
            key = (config.state_kinds.index(kind), k)
            batches[kind, k] = list(_input_batches(config, rows, cols, key))
        points = itertools.product(config.r_word, config.r_bit, config.r_source, config.r_sense)
        for r_word, r_bit, r_source, r_sense in points:
            resistances = {"r_word": r_word, "r_bit": r_bit, "r_source": r_source, "r_sense": r_sense}
            for kind, k, conductances in states:
                for b, voltages in batches[kind, k]:
                    labels = {"rows": rows, "cols": cols, "r_word_ohm": r_word, "r_bit_ohm": r_bit,
                              "r_source_ohm": r_source, "r_sense_ohm": r_sense, "state": kind,
                              "state_index": k, "batch_index": b, "n_vectors": int(voltages.shape[0])}
                    job_id = job_id_of(device, conductances, resistances, config.drive, voltages,
                                       config.options, config.mode, config.save_voltages)
                    jobs.append(SweepJob(job_id=job_id, index=len(jobs), labels=labels, device=device,
                                         conductances=conductances, resistances=resistances,
                                         drive=config.drive, voltages=voltages,
                                         options=dict(config.options), mode=config.mode,
                                         save_voltages=config.save_voltages, seed=config.seed))
    first = {}
    for job in jobs:
        other = first.setdefault(job.job_id, job)
        if other is not job:
            # Identical jobs would share one file in the store.
            raise ValueError(f"jobs {other.index} {other.labels} and {job.index} {job.labels} are identical "
                             "(same crossbar, input vectors and options): remove the repeated input "
                             "batch from the input file")
    return jobs
