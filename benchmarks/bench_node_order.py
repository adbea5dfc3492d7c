"""Fill-in and LU time of ngspice for two node numberings of the same crossbar netlist.

ngspice numbers the circuit nodes in the order the netlist first names them, and
ngspice 39's sparse solver (Sparse 1.3) breaks the ties of its Markowitz pivot
search by that numbering. spicecross's netlist writer lists the devices first,
in nested-dissection order of their crosspoints
(:func:`spicecross.netlist.writer.device_order`). This benchmark runs that
netlist and a copy whose device lines are sorted row by row (the order a
hand-written netlist has), both with ``.options acct``. It prints ngspice's own
counts for each: Newton iterations, fill-in entries, reordering and
factorization time. The circuit and the results are the same; the script checks
that the bit-line currents agree.

Crossbar: sinh-law devices (v0 = 0.15 V), conductances uniform in
[1e-5, 1e-4] S, 1 Ω word- and bit-line segments, inputs uniform in [0, 0.5] V.

Run: ``.venv/bin/python benchmarks/bench_node_order.py`` (64×64, 10 vectors,
about 15 s) or ``--size 128 --vectors 3`` (about 2.5 minutes).
"""

from __future__ import annotations

import argparse
import datetime
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine_info import describe

ACCT_FIELDS = {"iterations": "Total iterations", "fill_in": "Circuit fill-in non-zeroes",
               "reorder_s": "Matrix reorder time", "factor_s": "Matrix factor time"}


def netlists(size: int, vectors: int, seed: int) -> tuple[str, str]:
    """Return the spicecross netlist and a row-by-row copy, both with ``.options acct``."""
    from spicecross.crossbar.spec import CrossbarSpec
    from spicecross.devices import builtin_device
    from spicecross.netlist.writer import format_crossbar_netlist

    rng = np.random.default_rng(seed)
    spec = CrossbarSpec(rng.uniform(1e-5, 1e-4, (size, size)), builtin_device("sinh", v0=0.15),
                        r_word=1.0, r_bit=1.0)
    text = format_crossbar_netlist(spec, rng.uniform(0.0, 0.5, (vectors, size))).text
    text = text.replace("\n.options ", "\n.options acct ", 1)

    lines = text.splitlines()
    device_rows = [k for k, line in enumerate(lines) if line.startswith("xd_r")]

    def position(line: str) -> tuple[int, int]:
        row, col = re.match(r"xd_r(\d+)_c(\d+) ", line).groups()
        return int(row), int(col)

    by_rows = sorted((lines[k] for k in device_rows), key=position)
    for k, line in zip(device_rows, by_rows, strict=True):
        lines[k] = line
    return text, "\n".join(lines) + "\n"


def run_ngspice(text: str, folder: Path, name: str) -> dict:
    """Run ``ngspice -b`` on ``text``; return its acct counts, the wall time and the printed currents."""
    path = folder / f"{name}.cir"
    path.write_text(text)
    start = time.perf_counter()
    result = subprocess.run(["ngspice", "-b", str(path)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"ngspice failed on {path} (exit {result.returncode}):\n{output[-2000:]}")
    counts = {"wall_s": wall}
    for key, label in ACCT_FIELDS.items():
        match = re.search(re.escape(label) + r"\s*=\s*([-+.\deE]+)", output)
        if match is None:
            raise RuntimeError(f"'{label}' missing from the ngspice output of {path}")
        counts[key] = float(match.group(1))
    # .print lines: index, sweep value, then currents; the same rows come in column groups.
    rows = [line.split() for line in output.splitlines() if re.match(r"^\d+\s+[-+.\deE]+\s", line)]
    counts["printed"] = np.array([float(v) for row in rows for v in row[2:]])
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="rows = cols of the crossbar (default 64)")
    parser.add_argument("--vectors", type=int, default=10, help="input vectors in the sweep (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the conductances and inputs")
    args = parser.parse_args(argv)
    if args.size < 2 or args.vectors < 2:
        parser.error(f"--size {args.size} and --vectors {args.vectors} must both be at least 2")

    print(describe())
    nested, by_rows = netlists(args.size, args.vectors, args.seed)
    with tempfile.TemporaryDirectory(prefix="spicecross-bench-") as tmp:
        base = run_ngspice(by_rows, Path(tmp), "rows")
        new = run_ngspice(nested, Path(tmp), "nested")
    if base["printed"].shape != new["printed"].shape or not np.allclose(
            new["printed"], base["printed"], rtol=1e-6, atol=0.0):
        print("bench_node_order: the two netlists printed different bit-line currents, although "
              "the node order must not change results: report this as a bug", file=sys.stderr)
        return 1

    print(f"{args.size}x{args.size} sinh crossbar, {args.vectors} vectors, one ngspice -b run each")
    print(f"{'devices listed':<22}{'iterations':>11}{'fill-in':>10}{'reorder s':>11}"
          f"{'factor s':>10}{'per LU s':>10}{'wall s':>9}")
    for label, counts in (("row by row", base), ("nested dissection", new)):
        per_lu = counts["factor_s"] / counts["iterations"]
        print(f"{label:<22}{counts['iterations']:>11.0f}{counts['fill_in']:>10.0f}"
              f"{counts['reorder_s']:>11.3f}{counts['factor_s']:>10.3f}{per_lu:>10.4f}"
              f"{counts['wall_s']:>9.1f}")

    def ratio(key: str) -> str:
        # ngspice prints its times with three decimals, so a small crossbar's can read 0.
        return f"{base[key] / new[key]:.2f}x" if new[key] > 0 else "n/a (time below ngspice's resolution)"

    print(f"ratios row by row / nested: fill-in {ratio('fill_in')}, factorization {ratio('factor_s')}, "
          f"wall time {ratio('wall_s')}")
    from spicecross.sim.ngspice import batch_version

    print(f"date {datetime.date.today()}; {batch_version()}; command: python "
          f"benchmarks/bench_node_order.py --size {args.size} --vectors {args.vectors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
