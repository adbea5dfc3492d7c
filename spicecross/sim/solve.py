"""Solving a crossbar for a batch of input vectors with either engine.

``engine="ngspice"`` writes the netlist, runs it in a worker process and reads
the currents and node voltages back; ``engine="exact"`` solves the same nodal
equations in scipy. Both return a :class:`~spicecross.sim.result.SolveResult`
with the same quantities, so they can be compared entry by entry.
"""

from __future__ import annotations

import time
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
    currents = np.stack([vector(f"vsns_c{j}#branch") for j in range(spec.cols)], axis=1)
    sides = ("w", "e")[:topology.ends]
    # i(bsource) is the current into its positive terminal; the driver delivers the opposite.
    driver_currents = np.stack(
        [np.stack([-vector(f"bdrv_r{i}_{side}#branch") for i in range(spec.rows)], axis=1) for side in sides],
        axis=2)
    power = np.einsum("br,bre->b", voltages, driver_currents)

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


def solve(spec: CrossbarSpec, voltages, *, engine: str = "exact", runner: NgspiceRunner | None = None,
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
    """Solve a netlist file written by ``spicecross netlist generate`` (its sidecar JSON beside it).

    The ngspice engine runs the file's own text, after the safety check that untrusted
    netlists get; the exact engine solves the crossbar that the sidecar describes.
    """
    from spicecross.netlist.safety import check_safety
    from spicecross.resources import device_models_dir

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"netlist {path} not found")
    spec, voltages, options = read_sidecar(path)
    if engine == "exact":
        from spicecross.sim.exact import solve_exact

        return solve_exact(spec, voltages)
    if engine != "ngspice":
        raise ValueError(f"engine {engine!r} is invalid: use one of {list(ENGINES)}")
    text = path.read_text()
    from spicecross.netlist.parse import parse_netlist

    check_safety(parse_netlist(text, path=path), netlist_dir=path.parent,
                 allowed_dirs=(device_models_dir(),), allow_unsafe=allow_unsafe)
    netlist = format_crossbar_netlist(spec, voltages, options=options)
    return solve_netlist(netlist, runner, text=text)
