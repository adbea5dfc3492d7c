"""The example job: generate a crossbar, inspect its netlist and solve it with both engines.

It shows the whole netlist path on one small array: random weights mapped to
differential pairs, a power-law device, 2 Ω wire segments, a netlist written and
linted, then the same input vectors solved in ngspice and by the exact solver.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spicecross.crossbar.mapping import differential_output, map_differential
from spicecross.crossbar.spec import CrossbarSpec
from spicecross.devices import builtin_device
from spicecross.netlist.writer import format_crossbar_netlist, write_crossbar_netlist


def run_example(args) -> int:
    """Run the example job and write its report to ``args.output``; return the exit status."""
    from spicecross.netlist.inspect import inspect_netlist
    from spicecross.sim.exact import solve_exact
    from spicecross.sim.runner import NgspiceRunner
    from spicecross.sim.solve import solve_netlist

    out = Path(args.output)
    rng = np.random.default_rng(0)
    inputs, outputs, batch = 16, 8, 8
    k_v = 0.5
    weights = rng.normal(size=(inputs, outputs))
    mapping = map_differential(weights, g_off=1e-4, g_on=5e-4)
    device = builtin_device("power_law", n=2.5, v_ref=k_v / 2)
    spec = CrossbarSpec(mapping.conductances, device=device, r_word=2.0, r_bit=2.0)
    x = rng.uniform(0, 1, size=(batch, inputs))
    netlist = format_crossbar_netlist(spec, k_v * x)
    cir, _ = write_crossbar_netlist(out / "example.cir", netlist)

    report = inspect_netlist(cir)
    with NgspiceRunner(1) as runner:
        spice = solve_netlist(netlist, runner)
    exact = solve_exact(spec, k_v * x)

    ideal = x @ weights
    y_spice = differential_output(spice.currents, k_v, mapping.k_g)
    rel = np.max(np.abs(spice.currents - exact.currents) / np.abs(exact.currents))
    summary = {
        "crossbar": f"{spec.rows}x{spec.cols}", "device": "power_law n=2.5", "wire_ohm": 2.0,
        "ngspice_version": spice.info["ngspice_version"],
        "ngspice_vs_exact_max_relative_current_error": float(rel),
        "power_w": spice.power.tolist(),
        "power_breakdown_w": {k: v.tolist() for k, v in spice.power_breakdown.items()},
        "output_rmse_vs_ideal": float(np.sqrt(np.mean((y_spice - ideal) ** 2))),
        "ngspice_s": spice.elapsed_s, "exact_s": exact.elapsed_s,
        "lint_findings": len(report.to_dict().get("findings", [])),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.json:
        print(json.dumps(summary))
        return 0
    print(report.format_text())
    print()
    print(f"{spec.rows}x{spec.cols} power-law crossbar (n = 2.5), 2 ohm wire segments, {batch} input vectors")
    print(f"ngspice ({summary['ngspice_version']}) vs exact solver: largest relative current "
          f"difference {rel:.2e}")
    print(f"{'vector':>6} {'power (W)':>12} {'devices':>10} {'wires':>10} {'|y - xW| max':>14}")
    wires = spice.power_breakdown["word_wires"] + spice.power_breakdown["bit_wires"]
    for b in range(batch):
        print(f"{b:>6} {spice.power[b]:12.4e} {spice.power_breakdown['devices'][b]:10.3e} "
              f"{wires[b]:10.3e} {np.max(np.abs(y_spice[b] - ideal[b])):14.4f}")
    print(f"report written to {out}/")
    return 0
