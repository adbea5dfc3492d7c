"""Solving a crossbar for a batch of input vectors with either engine.

``engine="ngspice"`` writes the netlist, runs it in a worker process and reads
the currents and node voltages back; ``engine="exact"`` solves the same nodal
equations in scipy. Both return a :class:`~spicecross.sim.result.SolveResult`
with the same quantities, so they can be compared entry by entry.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np

from spicecross.crossbar.spec import CrossbarSpec
from spicecross.crossbar.topology import RES_BIT, RES_SENSE, RES_SOURCE, RES_WORD, CrossbarTopology
from spicecross.errors import SimulationError
from spicecross.netlist.writer import CrossbarNetlist, format_crossbar_netlist, read_sidecar
from spicecross.sim.result import SolveResult
from spicecross.sim.runner import NgspiceRunner, RunOutput

ENGINES = ("exact", "ngspice")


def result_from_vectors(spec: CrossbarSpec, topology: CrossbarTopology, voltages: np.ndarray,
                        run: RunOutput, elapsed: float, options: dict) -> SolveResult:
    """Turn the vectors of an ngspice run of a crossbar netlist into a SolveResult."""
    vectors = run.vectors
    batch = voltages.shape[0]
    names = topology.names

    def vector(name: str) -> np.ndarray:
        values = vectors.get(name)
        if values is None:
            raise SimulationError(f"ngspice returned no vector {name!r}: the netlist is not a "
                                  "spicecross crossbar, or its analysis did not run",
                                  ngspice_version=run.version, output=run.output)
        if values.size < batch:
            raise SimulationError(f"ngspice returned {values.size} of {batch} sweep points: the "
                                  "DC sweep stopped early", ngspice_version=run.version, output=run.output)
        return values[:batch]

    node_v = np.zeros((batch, topology.n_nodes))
    fixed = topology.fixed_mask
    for k, name in enumerate(names):
        if name.startswith("vg_"):
            continue  # virtual grounds sit at 0 V
        if fixed[k] or name in vectors:
            node_v[:, k] = vector(name)
    currents, driver_currents, power = _terminal_quantities(vector, vectors, spec.rows, spec.cols,
                                                             topology.ends)

    dv = node_v[:, topology.res_a] - node_v[:, topology.res_b]
    loss = dv * dv / topology.res_ohm
    breakdown = {}
    for key, kind in (("word_wires", RES_WORD), ("bit_wires", RES_BIT), ("source", RES_SOURCE),
                      ("sense", RES_SENSE)):
        breakdown[key] = loss[:, topology.res_kind == kind].sum(axis=1)
    v_dev = node_v[:, topology.wl_nodes.ravel()] - node_v[:, topology.bl_nodes.ravel()]
    if spec.device.is_builtin:
        params = {k: v.ravel() for k, v in spec.device.law_params(spec.shape).items()}
        i_dev = spec.device.law.current(v_dev, spec.conductances.ravel(), v_ref=spec.v_ref, **params)
        device_power = np.sum(v_dev * i_dev, axis=1)
    else:
        # A user's subcircuit has no Python law: its power is what the wires do not take.
        device_power = power - sum(breakdown.values())
    breakdown = {"devices": device_power, **breakdown}
    shape = (batch, spec.rows, spec.cols)
    return SolveResult(
        currents=currents, driver_currents=driver_currents, power=power, power_breakdown=breakdown,
        wl_voltages=node_v[:, topology.wl_nodes.ravel()].reshape(shape),
        bl_voltages=node_v[:, topology.bl_nodes.ravel()].reshape(shape),
        engine="ngspice", elapsed_s=elapsed,
        info={"ngspice_version": run.version, "ngspice_mode": run.mode, "options": dict(options)})


def _terminal_quantities(vector, vectors, rows: int, cols: int, ends: int):
    """Return bit-line currents, driver currents and driver power read from a run's vectors.

    The driver voltages are read from the run too, so an edited netlist reports the
    power of what ngspice actually solved. A row driven at both ends whose netlist
    has no east driver (ideal wires join both ends into one node) reports half of
    the west driver's current at each end, as the exact solver does.
    """
    currents = np.stack([vector(f"vsns_c{j}#branch") for j in range(cols)], axis=1)
    # i(bsource) is the current into its positive terminal; the driver delivers the opposite.
    driver_currents = np.stack([-vector(f"bdrv_r{i}_w#branch") for i in range(rows)], axis=1)[:, :, None]
    driver_voltages = np.stack([vector(f"src_r{i}_w") for i in range(rows)], axis=1)[:, :, None]
    if ends == 2:
        driver_currents = np.repeat(driver_currents, 2, axis=2)
        driver_voltages = np.repeat(driver_voltages, 2, axis=2)
        for i in range(rows):
            if f"bdrv_r{i}_e#branch" in vectors:
                driver_currents[:, i, 1] = -vector(f"bdrv_r{i}_e#branch")
                driver_voltages[:, i, 1] = vector(f"src_r{i}_e")
            else:
                driver_currents[:, i, :] /= 2.0
    power = np.sum(driver_voltages * driver_currents, axis=(1, 2))
    return currents, driver_currents, power


def result_from_run_only(run: RunOutput, header: dict, elapsed: float) -> SolveResult:
    """Read the terminal quantities of a crossbar netlist run without its sidecar.

    Only what the run itself shows is reported: bit-line currents, driver currents and
    the power they deliver. The power breakdown needs the circuit's values, so it is empty.
    """
    rows, cols = int(header["rows"]), int(header["cols"])
    ends = 2 if header.get("drive") == "both" else 1
    batch = int(header.get("n_vectors", 1))

    def vector(name: str) -> np.ndarray:
        values = run.vectors.get(name)
        if values is None:
            raise SimulationError(f"ngspice returned no vector {name!r}: the netlist does not have the "
                                  "layout of a spicecross crossbar", ngspice_version=run.version,
                                  output=run.output)
        return values[:batch]

    currents, driver_currents, power = _terminal_quantities(vector, run.vectors, rows, cols, ends)
    nodes = np.full((currents.shape[0], rows, cols), np.nan)
    wl = nodes.copy()
    bl = nodes.copy()
    for i in range(rows):
        for j in range(cols):
            if f"wl_r{i}_c{j}" in run.vectors:
                wl[:, i, j] = vector(f"wl_r{i}_c{j}")
            if f"bl_r{i}_c{j}" in run.vectors:
                bl[:, i, j] = vector(f"bl_r{i}_c{j}")
    return SolveResult(currents=currents, driver_currents=driver_currents, power=power, power_breakdown={},
                       wl_voltages=wl, bl_voltages=bl, engine="ngspice", elapsed_s=elapsed,
                       info={"ngspice_version": run.version, "ngspice_mode": run.mode,
                             "note": "no sidecar: power breakdown and merged node voltages are not "
                                     "available"})


def solve_netlist(netlist: CrossbarNetlist, runner: NgspiceRunner | None = None, *,
                  text: str | None = None) -> SolveResult:
    """Run a crossbar netlist in ngspice and return its results.

    Args:
        netlist: the formatted netlist and its spec.
        runner: the worker pool to use; a one-worker pool is started and stopped when omitted.
        text: netlist text to run in place of ``netlist.text`` (a file the user edited).
    """
    start = time.perf_counter()
    own = runner is None
    runner = runner or NgspiceRunner(1)
    try:
        run = runner.run(text if text is not None else netlist.text)
    finally:
        if own:
            runner.close()
    return result_from_vectors(netlist.spec, netlist.topology, netlist.voltages, run,
                               time.perf_counter() - start, netlist.options)


def solve(spec: CrossbarSpec, voltages, *, engine: str, runner: NgspiceRunner | None = None,
          options: dict | None = None) -> SolveResult:
    """Solve ``spec`` for input voltages (batch, rows) in V with ``engine`` (``exact`` or ``ngspice``)."""
    if engine == "exact":
        from spicecross.sim.exact import solve_exact

        return solve_exact(spec, voltages)
    if engine == "ngspice":
        return solve_netlist(format_crossbar_netlist(spec, voltages, options=options), runner)
    raise ValueError(f"engine {engine!r} is invalid: use one of {list(ENGINES)}")


def solve_file(path: str | Path, *, engine: str = "ngspice", runner: NgspiceRunner | None = None,
               allow_unsafe: bool = False) -> SolveResult:
    """Solve a crossbar netlist file written by ``spicecross netlist generate``.

    The ngspice engine runs the file's own text after the safety check that
    untrusted netlists get. It needs the sidecar JSON beside the file for the power
    breakdown and node voltages; without it, or when the file was edited after it
    was generated, only what the run shows (currents and driver power) is reported.
    The exact engine solves the crossbar that the sidecar describes, so it needs an
    unedited file.
    """
    from spicecross.netlist.parse import parse_netlist
    from spicecross.netlist.safety import check_safety
    from spicecross.netlist.writer import HEADER_MARKER, sidecar_matches
    from spicecross.resources import device_models_dir

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"netlist {path} not found")
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is invalid: use one of {list(ENGINES)}")
    matches = sidecar_matches(path)
    if engine == "exact":
        if matches is False:
            raise ValueError(f"{path} was edited after it was generated, so its sidecar no longer describes "
                             "it: regenerate it, or solve the edited file with the ngspice engine")
        spec, voltages, _ = read_sidecar(path)
        from spicecross.sim.exact import solve_exact

        return solve_exact(spec, voltages)

    text = path.read_text()
    check_safety(parse_netlist(text, path=path), netlist_dir=path.parent,
                 allowed_dirs=(device_models_dir(),), allow_unsafe=allow_unsafe)
    if matches:
        spec, voltages, options = read_sidecar(path)
        return solve_netlist(format_crossbar_netlist(spec, voltages, options=options), runner, text=text)

    header = next((json.loads(line[len(HEADER_MARKER):]) for line in text.splitlines()
                   if line.startswith(HEADER_MARKER)), None)
    if header is None:
        raise ValueError(f"{path} has no '{HEADER_MARKER.strip()}' header line, so it is not a crossbar "
                         "netlist written by spicecross; run other netlists with 'ngspice -b' and "
                         "inspect them with 'spicecross netlist inspect'")
    # Lint an edited file first, because its errors can make ngspice fail with an unclear
    # message (a voltage loop) or compute a wrong value (a device with g <= 0).
    from spicecross.netlist.inspect import inspect_netlist

    errors = inspect_netlist(path, allow_unsafe=allow_unsafe, allowed_dirs=(device_models_dir(),)).errors
    if errors:
        listed = "\n  ".join(finding.format() for finding in errors[:5])
        more = f"\n  … and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise ValueError(f"{path} has {len(errors)} lint error(s), so ngspice would fail or compute a wrong "
                         f"value:\n  {listed}{more}\nFix them, or regenerate the netlist; "
                         f"'spicecross netlist inspect {path}' lists every finding")
    reason = "has no sidecar JSON" if matches is None else "was edited after it was generated"
    warnings.warn(f"{path} {reason}: reporting currents and driver power from the run only",
                  stacklevel=2)
    start = time.perf_counter()
    own = runner is None
    runner = runner or NgspiceRunner(1)
    try:
        run = runner.run(text)
    finally:
        if own:
            runner.close()
    return result_from_run_only(run, header, time.perf_counter() - start)


def solve_tiles(index_path: str | Path, *, engine: str = "ngspice", runner: NgspiceRunner | None = None,
                allow_unsafe: bool = False) -> SolveResult:
    """Solve every tile listed in a ``*.tiles.json`` index and add the currents of shared columns.

    Returns a result with the whole array's bit-line currents (batch, cols) in A and the
    total power (W); per-node voltages are not assembled across tiles (empty arrays).
    """
    index_path = Path(index_path)
    index = json.loads(index_path.read_text())
    if index.get("format") != "spicecross-tiles/1":
        raise ValueError(f"{index_path} is not a spicecross tile index (format {index.get('format')!r})")
    start = time.perf_counter()
    total_currents = None
    total_power = None
    breakdown: dict = {}
    for tile in index["tiles"]:
        result = solve_file(index_path.parent / tile["netlist"], engine=engine, runner=runner,
                            allow_unsafe=allow_unsafe)
        if total_currents is None:
            total_currents = np.zeros((result.batch, index["cols"]))
            total_power = np.zeros(result.batch)
        total_currents[:, tile["cols"][0]:tile["cols"][1]] += result.currents
        total_power += result.power
        for key, value in result.power_breakdown.items():
            breakdown[key] = breakdown.get(key, 0.0) + value
    empty = np.zeros((total_currents.shape[0], 0, 0))
    return SolveResult(currents=total_currents, driver_currents=empty, power=total_power,
                       power_breakdown=breakdown, wl_voltages=empty, bl_voltages=empty, engine=engine,
                       elapsed_s=time.perf_counter() - start,
                       info={**result.info, "tiles": len(index["tiles"])})
