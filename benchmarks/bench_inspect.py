"""Benchmark: parsing and inspecting a large crossbar netlist.

Prints the time to parse, and to parse and inspect (lint and graph), a netlist
written by spicecross, against the time to format it, all in the same run:

    .venv/bin/python benchmarks/bench_inspect.py --size 128
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from spicecross.crossbar.spec import CrossbarSpec
from spicecross.devices import builtin_device
from spicecross.netlist.inspect import inspect_netlist
from spicecross.netlist.parse import parse_netlist
from spicecross.netlist.writer import format_crossbar_netlist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128,
                        help="rows and columns of the crossbar (default 128)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    spec = CrossbarSpec(rng.uniform(1e-5, 1e-4, (args.size, args.size)),
                        device=builtin_device("power_law", n=2.5), r_word=1.0, r_bit=1.0)

    start = time.perf_counter()
    text = format_crossbar_netlist(spec, rng.uniform(0, 0.5, (4, args.size))).text
    t_format = time.perf_counter() - start
    start = time.perf_counter()
    parse_netlist(text)
    t_parse = time.perf_counter() - start
    start = time.perf_counter()
    report = inspect_netlist(text)
    t_inspect = time.perf_counter() - start

    print(f"{args.size}x{args.size} crossbar, {text.count(chr(10))} lines, "
          f"{len(report.to_dict().get('findings', []))} findings")
    print(f"format  {t_format:7.3f} s  (baseline)")
    print(f"parse   {t_parse:7.3f} s  ({t_parse / t_format:.1f}x format)")
    print(f"inspect {t_inspect:7.3f} s  ({t_inspect / t_format:.1f}x format)")


if __name__ == "__main__":
    main()
