"""Crossbar tile sweeps: the ground truth that surrogates are fitted to and scored on.

A tile set is a list of conductance states of one tile size and wiring, each
solved for a batch of input vectors. ngspice gives the reference. The exact
nodal solver serves the wide grids that would take too long in SPICE, and it
agrees with ngspice to about 1e-9 relative. Each (state, batch) is one job and
one ngspice load. Finished ngspice jobs are written to ``DIR/<job key>.npz``,
where the key is the SHA-256 of the netlist text, so a rerun with the same
configuration skips them: an interrupted sweep resumes where it stopped.

State kinds: ``random`` (uniform in [g_min, g_max]), ``log-random`` (log-uniform),
``binary`` (each device at g_min or g_max), ``checkerboard``, ``all-on``,
``all-off``, ``ramp-rows`` and ``ramp-cols`` (linear in the row or column index).
Input kinds: ``uniform`` (each voltage uniform in [0, v_max]), ``binary`` (0 or
v_max) and ``mixed`` (half of the vectors of each kind).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spicecross.calibration.errors import CalibrationError
from spicecross.calibration.execution import NetlistExecutor
from spicecross.crossbar.spec import CrossbarSpec
from spicecross.devices.library import DeviceModel
from spicecross.errors import SimulationError

logger = logging.getLogger(__name__)

STATE_KINDS = (
    "random",
    "log-random",
    "binary",
    "checkerboard",
    "all-on",
    "all-off",
    "ramp-rows",
    "ramp-cols",
)
INPUT_KINDS = ("uniform", "binary", "mixed")
ENGINES = ("ngspice", "exact")


@dataclass(frozen=True)
class TileConditions:
    """Size, wiring and conductance range shared by the tiles of one set.

    Attributes:
        rows, cols: tile size.
        r_word, r_bit: word- and bit-line segment resistance, Ω.
        r_source, r_sense: driver and sense resistance, Ω.
        g_min, g_max: conductance range of the states, S.
        v_max: largest input voltage, V.
    """

    rows: int
    cols: int
    r_word: float
    r_bit: float
    r_source: float = 0.0
    r_sense: float = 0.0
    g_min: float = 5e-6
    g_max: float = 5e-5
    v_max: float = 0.5

    def to_dict(self) -> dict:
        """Return a JSON-ready description (Ω, S, V)."""
        return dict(self.__dict__)


@dataclass
class TileSet:
    """Solved tiles of one set.

    Attributes:
        conditions: what the tiles share.
        kinds: state kind of each tile.
        conductances: (tiles, rows, cols), S.
        voltages: (tiles, batch, rows), V.
        currents: bit-line currents, (tiles, batch, cols), A.
        power: power delivered by the drivers, (tiles, batch), W.
        engine: ``ngspice`` or ``exact``.
        keys: the job key (SHA-256 of the netlist) of each tile, for provenance.
        ngspice_version: version that solved the set (ngspice engine).
    """

    conditions: TileConditions
    kinds: list
    conductances: np.ndarray
    voltages: np.ndarray
    currents: np.ndarray
    power: np.ndarray
    engine: str
    keys: list = field(default_factory=list)
    ngspice_version: str = ""

    @property
    def vectors(self) -> int:
        """Number of solved input vectors over all tiles."""
        return int(self.voltages.shape[0] * self.voltages.shape[1])

    def provenance(self) -> dict:
        """Return what a surrogate fitted on this set should record about it."""
        return {
            "engine": self.engine,
            "ngspice_version": self.ngspice_version,
            "conditions": self.conditions.to_dict(),
            "tiles": len(self.kinds),
            "kinds": list(self.kinds),
            "vectors": self.vectors,
            "job_keys": list(self.keys),
        }


def make_state(
    kind: str, rows: int, cols: int, g_min: float, g_max: float, rng: np.random.Generator
) -> np.ndarray:
    """Return a (rows, cols) conductance state of ``kind`` (see the module docstring), S."""
    if kind == "random":
        return rng.uniform(g_min, g_max, (rows, cols))
    if kind == "log-random":
        return np.exp(rng.uniform(np.log(g_min), np.log(g_max), (rows, cols)))
    if kind == "binary":
        return np.where(rng.random((rows, cols)) < 0.5, g_min, g_max)
    if kind == "checkerboard":
        return np.where((np.arange(rows)[:, None] + np.arange(cols)[None, :]) % 2 == 0, g_max, g_min)
    if kind == "all-on":
        return np.full((rows, cols), g_max)
    if kind == "all-off":
        return np.full((rows, cols), g_min)
    if kind == "ramp-rows":
        return np.repeat(np.linspace(g_min, g_max, rows)[:, None], cols, axis=1)
    if kind == "ramp-cols":
        return np.repeat(np.linspace(g_min, g_max, cols)[None, :], rows, axis=0)
    raise ValueError(f"state kind {kind!r} is invalid: use one of {list(STATE_KINDS)}")


def make_inputs(kind: str, batch: int, rows: int, v_max: float, rng: np.random.Generator) -> np.ndarray:
    """Return (batch, rows) input voltages of ``kind`` (see the module docstring), V."""
    if kind == "uniform":
        return rng.uniform(0.0, v_max, (batch, rows))
    if kind == "binary":
        return np.where(rng.random((batch, rows)) < 0.5, 0.0, v_max)
    if kind == "mixed":
        half = batch // 2
        return np.concatenate(
            [
                make_inputs("uniform", batch - half, rows, v_max, rng),
                make_inputs("binary", half, rows, v_max, rng),
            ]
        )
    raise ValueError(f"input kind {kind!r} is invalid: use one of {list(INPUT_KINDS)}")


def make_specs(
    conditions: TileConditions, kinds: list[str], device_for: Callable[[np.ndarray], DeviceModel], seed: int
) -> list[CrossbarSpec]:
    """Build one CrossbarSpec per state kind; ``device_for(g)`` returns the device programmed to ``g`` (S)."""
    rng = np.random.default_rng(seed)
    c = conditions
    specs = []
    for kind in kinds:
        g = make_state(kind, c.rows, c.cols, c.g_min, c.g_max, rng)
        specs.append(
            CrossbarSpec(
                g,
                device=device_for(g),
                r_word=c.r_word,
                r_bit=c.r_bit,
                r_source=c.r_source,
                r_sense=c.r_sense,
            )
        )
    return specs


def job_key(text: str) -> str:
    """Return the SHA-256 (hex) of a netlist: the name of its result in the sweep folder."""
    return hashlib.sha256(text.encode()).hexdigest()


def solve_tiles(
    conditions: TileConditions,
    kinds: list[str],
    device_for: Callable[[np.ndarray], DeviceModel],
    *,
    vectors: int,
    input_kind: str = "uniform",
    seed: int = 0,
    engine: str = "ngspice",
    executor: NetlistExecutor | None = None,
    folder: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> TileSet:
    """Build and solve one tile per state kind, ``vectors`` input vectors each.

    Args:
        conditions: size, wiring and ranges.
        kinds: state kind of each tile (a kind may repeat; random kinds then differ).
        device_for: returns the device model for a conductance matrix (S).
        vectors: input vectors per tile.
        input_kind: ``uniform``, ``binary`` or ``mixed``.
        seed: seed of states and inputs.
        engine: ``ngspice`` or ``exact``.
        executor: where ngspice runs (ngspice engine).
        folder: where finished ngspice jobs are kept for resuming; nothing is kept when None.
        progress: called with the number of tiles finished since the last call.

    Raises:
        CalibrationError: an ngspice job failed; the finished jobs stay in ``folder``.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is invalid: use one of {list(ENGINES)}")
    if vectors < 1:
        raise ValueError(f"vectors={vectors!r} is invalid: give at least 1 input vector per tile")
    specs = make_specs(conditions, kinds, device_for, seed)
    rng = np.random.default_rng([seed, 2])
    inputs = [make_inputs(input_kind, vectors, conditions.rows, conditions.v_max, rng) for _ in specs]
    currents, power, keys, version = [None] * len(specs), [None] * len(specs), [""] * len(specs), ""
    if engine == "exact":
        from spicecross.sim.exact import solve_exact

        for k, (spec, v) in enumerate(zip(specs, inputs, strict=False)):
            result = solve_exact(spec, v)
            currents[k], power[k] = result.currents, result.power
            if progress:
                progress(1)
    else:
        version = _solve_ngspice(specs, inputs, executor, folder, currents, power, keys, progress)
    return TileSet(
        conditions,
        list(kinds),
        np.stack([s.conductances for s in specs]),
        np.stack(inputs),
        np.stack(currents),
        np.stack(power),
        engine,
        keys,
        version,
    )


def _solve_ngspice(specs, inputs, executor, folder, currents, power, keys, progress) -> str:
    from spicecross.netlist.writer import format_crossbar_netlist
    from spicecross.sim.solve import result_from_vectors

    if executor is None:
        raise ValueError("the ngspice engine needs an executor (spicecross.calibration.NetlistExecutor)")
    folder = Path(folder) if folder is not None else None
    netlists = [format_crossbar_netlist(spec, v) for spec, v in zip(specs, inputs, strict=False)]
    todo, version = [], ""
    for k, netlist in enumerate(netlists):
        keys[k] = job_key(netlist.text)
        stored = folder / f"{keys[k]}.npz" if folder else None
        if stored is not None and stored.exists():
            with np.load(stored, allow_pickle=False) as data:
                currents[k], power[k] = data["currents"], data["power"]
                version = str(data["ngspice_version"])
            if progress:
                progress(1)
        else:
            todo.append(k)
    if todo:
        logger.info(
            "solving %d of %d tiles in ngspice (%d already stored)",
            len(todo),
            len(netlists),
            len(netlists) - len(todo),
        )
    failures = []
    runs = executor.run_each([netlists[k].text for k in todo]) if todo else ()
    for position, out in runs:
        k = todo[position]
        if isinstance(out, SimulationError):
            failures.append((k, out))
            continue
        result = result_from_vectors(
            netlists[k].spec, netlists[k].topology, netlists[k].voltages, out, 0.0, netlists[k].options
        )
        currents[k], power[k], version = result.currents, result.power, out.version
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{keys[k]}.tmp.npz"
            np.savez(tmp, currents=result.currents, power=result.power, ngspice_version=np.array(out.version))
            tmp.replace(folder / f"{keys[k]}.npz")
        if progress:
            progress(1)
    if failures:
        k, exc = failures[0]
        where = f"; the {len(netlists) - len(failures)} finished tiles are kept in {folder}" if folder else ""
        raise CalibrationError(
            f"{len(failures)} of {len(netlists)} tile sweeps failed in ngspice{where}. First "
            f"failure (tile {k}): {str(exc).splitlines()[0]}"
        ) from exc
    return version
