"""Regenerate the golden netlists in netlists/.

Each golden netlist is written by the current netlist writer from a fixed
specification; tests/test_golden.py regenerates them and compares byte for byte,
so any change to the netlist format shows up as a diff to review. Run it after
an intended format change:

    .venv/bin/python scripts/make_golden_netlists.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from spicecross.crossbar.mapping import map_differential
from spicecross.crossbar.spec import CrossbarSpec
from spicecross.devices import builtin_device
from spicecross.netlist.writer import format_crossbar_netlist, write_crossbar_netlist

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "netlists"


def golden_cases() -> dict:
    """Return ``{file stem: (spec, voltages)}`` of every golden netlist."""
    rng = np.random.default_rng(2024)
    g = rng.uniform(1e-5, 1e-4, size=(4, 3))
    cases = {
        "linear_4x3_wires": (CrossbarSpec(g, r_word=2.0, r_bit=3.0, r_source=10.0, r_sense=5.0),
                             rng.uniform(0, 0.5, (3, 4))),
        "power_law_4x3_both_ends": (
            CrossbarSpec(g, device=builtin_device("power_law", n=2.5), r_word=1.5, r_bit=1.5, drive="both"),
            rng.uniform(0, 0.5, (2, 4))),
        "sinh_4x3_ideal_wires": (CrossbarSpec(g, device=builtin_device("sinh", v0=0.2)),
                                 rng.uniform(-0.5, 0.5, (1, 4))),
        "poole_frenkel_4x3_per_segment": (
            CrossbarSpec(g, device=builtin_device("poole_frenkel"),
                         r_word=np.arange(1.0, 13.0).reshape(4, 3), r_bit=np.zeros((4, 3)) + 0.5),
            rng.uniform(0, 0.5, (2, 4))),
    }
    weights = rng.normal(size=(5, 2))
    mapping = map_differential(weights, 1e-5, 5e-5)
    cases["differential_5x2_pairs"] = (CrossbarSpec(mapping.conductances, r_word=2.0, r_bit=2.0),
                                       0.5 * rng.uniform(0, 1, (2, 5)))
    return cases


def main(out_dir: Path = GOLDEN_DIR) -> int:
    """Write every golden netlist and its sidecar into ``out_dir``."""
    for stem, (spec, voltages) in golden_cases().items():
        netlist = format_crossbar_netlist(spec, voltages, title=f"spicecross golden netlist {stem}")
        cir, _ = write_crossbar_netlist(out_dir / f"{stem}.cir", netlist)
        print(f"wrote {cir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN_DIR))
