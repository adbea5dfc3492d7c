"""Throughput of the sweep engine against one PySpice ``.op`` per input vector.

Both paths solve the same sinh-law crossbar (1 Ω word- and bit-line segments,
random conductances in [1e-5, 1e-4] S, inputs uniform in [0, 0.5] V) with the
same ngspice options (spicecross's defaults: reltol=1e-9, abstol=1e-15,
vntol=1e-12), so they reach the same accuracy:

* engine: :func:`spicecross.sweep.run_sweep` with its default 2 local workers in
  batch mode. The vectors are split into one job per worker, and each job is one
  ngspice load with a DC sweep over its vectors. The result cache is off.
* by hand: what a user would write in one process: a PySpice ``Circuit`` of the
  same crossbar, its input sources set for each vector, and
  ``simulator.operating_point()`` per vector (ngspice's shared library). This
  path runs only the first ``--baseline-vectors`` vectors, because one
  operating point of a 64×64 crossbar takes seconds. Its throughput is measured
  on those, and both paths' currents are compared on them.

Run: ``.venv/bin/python benchmarks/bench_sweep.py`` (64×64, 100 vectors, a few
minutes on 2 cores) or ``--quick`` (32×32, 20 vectors).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine_info import describe


def sweep_config(size: int, vectors: int, workers: int, seed: int):
    """Return the engine's sweep: one random state, ``vectors`` split into ``workers`` jobs."""
    from spicecross.sweep import parse_config

    per_job = -(-vectors // workers)
    return parse_config({
        "sweep": {"name": "bench", "seed": seed, "cache": False},
        "device": {"name": "sinh", "params": {"v0": 0.15}},
        "array": {"sizes": [[size, size]], "r_word": [1.0], "r_bit": [1.0]},
        "states": {"kinds": ["random"], "count": 1},
        "inputs": {"v_max": 0.5, "vectors_per_job": per_job, "batches": workers},
        "ngspice": {"mode": "batch", "timeout": 3600.0, "retries": 0},
        "executor": {"workers": workers},
    })


def cpu_seconds(who: int) -> float:
    """Return user + system CPU time of ``resource.RUSAGE_SELF`` or ``RUSAGE_CHILDREN``, s."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_engine(config, output: Path):
    """Run the sweep; return (wall time in s, CPU time of this process and its ngspice children in s,
    summary, jobs)."""
    from spicecross.sweep import make_jobs, run_sweep

    cpu_before = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    summary = run_sweep(config, output=output)
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN) - cpu_before
    if not summary.ok:
        raise RuntimeError(f"the benchmark sweep failed: {summary.failed}")
    return elapsed, cpu, summary, make_jobs(config)


def run_by_hand(job, n_vectors: int, options: dict):
    """Solve the first ``n_vectors`` vectors of ``job`` with one PySpice operating point each.

    Returns:
        (wall time in s, CPU time in s, bit-line currents (n_vectors, cols) in A).
    """
    from spicecross.sim.ngspice import find_library

    os.environ["NGSPICE_LIBRARY_PATH"] = find_library()
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)
    from PySpice.Spice.Netlist import Circuit

    spec = job.spec()
    rows, cols = spec.shape
    params = spec.device.instance_params(spec.conductances)
    cpu_before = cpu_seconds(resource.RUSAGE_SELF)
    start = time.perf_counter()
    circuit = Circuit("crossbar by hand")
    circuit.raw_spice = spec.device.subckt_text
    r_word, r_bit = float(spec.r_word.flat[0]), float(spec.r_bit.flat[0])
    for i in range(rows):
        circuit.V(f"in{i}", f"d{i}", circuit.gnd, 0.0)
        for j in range(cols):
            left = f"d{i}" if j == 0 else f"w{i}_{j - 1}"
            circuit.R(f"w{i}_{j}", left, f"w{i}_{j}", r_word)
            below = f"b{i + 1}_{j}" if i + 1 < rows else f"s{j}"
            circuit.R(f"b{i}_{j}", f"b{i}_{j}", below, r_bit)
            values = {key: float(params[key][i, j]) for key in sorted(params)}
            circuit.X(f"d{i}_{j}", spec.device.subckt_name, f"w{i}_{j}", f"b{i}_{j}", **values)
    for j in range(cols):
        circuit.V(f"sns{j}", f"s{j}", circuit.gnd, 0.0)
    simulator = circuit.simulator(simulator="ngspice-shared")
    simulator.options(**options)
    currents = np.zeros((n_vectors, cols))
    for b in range(n_vectors):
        for i in range(rows):
            circuit[f"Vin{i}"].dc_value = float(job.voltages[b, i])
        analysis = simulator.operating_point()
        currents[b] = [float(analysis.branches[f"vsns{j}"][0]) for j in range(cols)]
    return time.perf_counter() - start, cpu_seconds(resource.RUSAGE_SELF) - cpu_before, currents


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32x32 crossbar, 20 vectors, 4 by hand")
    parser.add_argument("--size", type=int, default=None, help="rows = cols of the crossbar (default 64)")
    parser.add_argument("--vectors", type=int, default=None,
                        help="input vectors for the engine (default 100)")
    parser.add_argument("--baseline-vectors", type=int, default=None,
                        help="vectors solved one .op at a time by hand (default 10)")
    parser.add_argument("--workers", type=int, default=2,
                        help="engine workers (default 2, the engine's default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the state and inputs (default 0)")
    args = parser.parse_args(argv)
    size = args.size or (32 if args.quick else 64)
    vectors = args.vectors or (20 if args.quick else 100)
    baseline_vectors = args.baseline_vectors or (4 if args.quick else 10)
    if min(size, vectors, baseline_vectors, args.workers) < 1:
        parser.error("--size, --vectors, --baseline-vectors and --workers must be >= 1")

    from spicecross.netlist.writer import DEFAULT_OPTIONS

    config = sweep_config(size, vectors, args.workers, args.seed)
    print(f"{size}x{size} sinh crossbar, {vectors} vectors in {args.workers} jobs; {describe()}; "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        engine_s, engine_cpu, summary, jobs = run_engine(config, Path(tmp) / "out")
        from spicecross.sweep import SweepStore

        first_job = SweepStore(Path(tmp) / "out").read_job(jobs[0].job_id)
        engine_currents = first_job["arrays"]["results/currents_a"]
    engine_rate = summary.vectors_solved / engine_s
    print(f"engine: {summary.vectors_solved} vectors in {engine_s:.1f} s = {engine_rate:.3f} vectors/s, "
          f"{engine_cpu / summary.vectors_solved:.2f} CPU s per vector ({summary.executor}, "
          f"{summary.ngspice_version})", flush=True)

    n = min(baseline_vectors, jobs[0].batch)
    hand_s, hand_cpu, hand_currents = run_by_hand(jobs[0], n, DEFAULT_OPTIONS)
    hand_rate = n / hand_s
    print(f"by hand (PySpice .op per vector, one process): {n} vectors in {hand_s:.1f} s = "
          f"{hand_rate:.3f} vectors/s, {hand_cpu / n:.2f} CPU s per vector", flush=True)
    difference = np.max(np.abs(hand_currents - engine_currents[:n]) / np.abs(engine_currents[:n]))
    ratio = engine_rate / hand_rate
    # CPU time per vector grows less than wall time when other jobs load the
    # machine, but it leaves out the engine's use of several workers at once.
    cpu_ratio = (hand_cpu / n) / (engine_cpu / summary.vectors_solved)
    print(f"throughput ratio engine / by hand: {ratio:.1f}x (goal >= 10x); CPU time per vector ratio "
          f"{cpu_ratio:.1f}x; max relative difference of bit-line currents {difference:.1e}; load average "
          f"{os.getloadavg()[0]:.1f} at end")

    ngspice = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "ngspice"], capture_output=True,
                             text=True).stdout.strip() or summary.ngspice_version
    print("\nMarkdown row for docs/benchmarks.md:")
    print(f"| {size}x{size} sinh | {vectors} | {engine_s:.1f} s ({engine_rate:.2f}/s) | {n} | {hand_s:.1f} s "
          f"({hand_rate:.3f}/s) | {ratio:.1f}x | {cpu_ratio:.1f}x | {difference:.0e} |")
    print(f"date {datetime.date.today().isoformat()}; ngspice {ngspice}; Python {platform.python_version()}; "
          f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
