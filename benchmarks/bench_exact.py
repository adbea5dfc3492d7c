"""Speed, accuracy and memory of the exact nodal solver against ngspice and badcrossbar.

Sections, all measured in one run so that every ratio compares numbers taken
under the same machine load:

(a) the method choice on the linear crossbars of (b): sparse LU (``method="direct"``)
    against the chain-preconditioned CG of ``method="auto"``. A plain CG here also
    counts the iterations to a relative residual of 1e-12 on two systems. One is the
    full nodal matrix, preconditioned by its word-line and bit-line chain blocks.
    The other is the Schur complement of the bit-line nodes, preconditioned by
    their chain block.
(b) exact vs batched ngspice: :func:`spicecross.sim.solve.solve` with
    ``engine="ngspice"`` and ``NgspiceRunner(1)`` (one DC sweep over the input
    vectors, spicecross's default options reltol=1e-9, abstol=1e-15, vntol=1e-12)
    against ``solve_exact`` on the same crossbar and vectors: linear, sinh
    (v0 = 0.15 V) and power-law (n = 2.7) devices, conductances uniform in
    [1e-5, 1e-4] S, word- and bit-line segments uniform in [1, 2] Ω, 1 Ω source
    and sense resistance, inputs uniform in [0, 0.5] V.
(c) exact vs badcrossbar 1.1 (PyPI; a benchmark-only dependency) on linear
    crossbars with 1.5 Ω word-line and 2 Ω bit-line segments and 10–100 kΩ devices.
    badcrossbar's first word-line segment joins the applied voltage to the first
    cell and its last bit-line segment joins the last cell to the grounded output,
    which is spicecross's ``drive="west"`` with ``r_source = r_sense = 0``; its
    ``currents.output`` are spicecross's bit-line currents.
(d) the exponent b of a fit time ≈ a·N^b for each method.
(e) peak memory: the RSS high-water mark that one solve adds in a fresh process
    (exact and badcrossbar), and the peak unique set size of the ngspice worker.

Times are wall-clock (``time.perf_counter``) and CPU (``time.process_time`` for
in-process solvers, ``RUSAGE_CHILDREN`` for the ngspice worker), the minimum over
``--repeat`` runs for the fast solvers and one run for ngspice. "Agreement" is
max |a − b| / (1e-9·|b| + 1e-15 A) over all bit-line currents: at most 1 means
the solvers agree within that tolerance.

Run: ``.venv/bin/python benchmarks/bench_exact.py`` (an hour or more on 2 busy
cores: ngspice takes minutes per 128×128 run) or ``--quick`` (about a minute).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from machine_info import machine

SIZES_NGSPICE = {32: 16, 64: 8, 128: 4}
SIZES_NGSPICE_QUICK = {16: 4, 32: 4}
SIZES_METHODS = {64: 16, 128: 16, 256: 16}
SIZES_METHODS_QUICK = {32: 4, 64: 4}
SIZES_BADCROSSBAR = (32, 64, 128, 256, 512)
SIZES_BADCROSSBAR_QUICK = (32, 64, 128)
LAWS = ("linear", "sinh", "power_law")
LAWS_QUICK = ("linear", "sinh")
BIG_BATCH = 64
#: ngspice options for the rerun of a case whose node voltages differ by more than 1e-12 V.
TIGHT_OPTIONS = {"reltol": 1e-12, "vntol": 1e-15}
R_WORD_BC, R_BIT_BC = 1.5, 2.0


def versions() -> dict:
    """Return the versions of Python and of the packages this benchmark uses."""
    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "torch", "spicecross", "badcrossbar", "psutil"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device(law: str):
    from spicecross.devices import builtin_device

    return {"linear": builtin_device("linear"), "sinh": builtin_device("sinh", v0=0.15),
            "power_law": builtin_device("power_law", n=2.7)}[law]


def ngspice_crossbar(size: int, law: str, rng: np.random.Generator):
    """Return the section (b) crossbar: random devices and per-segment wires."""
    from spicecross.crossbar.spec import CrossbarSpec

    return CrossbarSpec(rng.uniform(1e-5, 1e-4, (size, size)), device=device(law),
                        r_word=rng.uniform(1.0, 2.0, (size, size)), r_bit=rng.uniform(1.0, 2.0, (size, size)),
                        r_source=1.0, r_sense=1.0)


def badcrossbar_case(size: int, vectors: int, rng: np.random.Generator):
    """Return device resistances (Ω), input voltages (vectors, size) and the equal CrossbarSpec."""
    from spicecross.crossbar.spec import CrossbarSpec

    resistances = rng.uniform(1e4, 1e5, (size, size))
    voltages = rng.uniform(0.0, 0.5, (vectors, size))
    spec = CrossbarSpec(1.0 / resistances, r_word=R_WORD_BC, r_bit=R_BIT_BC)
    return resistances, voltages, spec


def agreement(actual: np.ndarray, expected: np.ndarray) -> float:
    """Return max |a − b| / (1e-9·|b| + 1e-15): at most 1 when within the current tolerance."""
    return float(np.max(np.abs(actual - expected) / (1e-9 * np.abs(expected) + 1e-15)))


def timed(repeat: int, function, *args) -> tuple[float, float, object]:
    """Run ``function(*args)`` ``repeat`` times; return the least wall and CPU times (s), last result."""
    walls, cpus = [], []
    result = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


class ChildMemory:
    """Samples the unique set size (USS) of this process's children (the ngspice worker) in a thread.

    USS counts only the memory a worker does not share, so the pages it shares with
    this process after ``fork`` are left out.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    self.peak = max(self.peak, child.memory_full_info().uss)
                except psutil.Error:
                    pass
            self._stop.wait(self.interval)

    def __enter__(self):
        try:
            import psutil  # noqa: F401
        except ImportError:
            self.peak = None
            return self
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.peak is not None:
            self._stop.set()
            self._thread.join()


def run_ngspice(spec, voltages, options: dict | None = None) -> dict:
    """Solve with batched ngspice in a fresh one-worker pool; return times, peak USS and the result."""
    from spicecross.sim.runner import NgspiceRunner
    from spicecross.sim.solve import solve

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    runner = NgspiceRunner(1, timeout=7200)
    try:
        with ChildMemory() as memory:
            start = time.perf_counter()
            result = solve(spec, voltages, engine="ngspice", runner=runner, options=options)
            wall = time.perf_counter() - start
    finally:
        runner.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "uss_peak_mb": memory.peak / 2**20 if memory.peak else None,
            "result": result}


def max_voltage_difference(a, b) -> float:
    """Return the largest difference of word-line and bit-line node voltages of two results, V."""
    word = np.abs(a.wl_voltages - b.wl_voltages).max()
    return float(max(word, np.abs(a.bl_voltages - b.bl_voltages).max()))


def pcg_iterations(apply_matrix, apply_preconditioner, b: np.ndarray, rtol: float = 1e-12) -> int:
    """Return the CG iterations until sqrt(rᵀM⁻¹r) has dropped by ``rtol`` (at most 1000)."""
    x = np.zeros_like(b)
    r = b.copy()
    z = apply_preconditioner(r)
    p = z.copy()
    rz = rz0 = r @ z
    for iteration in range(1, 1001):
        q = apply_matrix(p)
        alpha = rz / (p @ q)
        x += alpha * p
        r -= alpha * q
        z = apply_preconditioner(r)
        rz_new = r @ z
        if rz_new <= rtol**2 * rz0:
            return iteration
        p = z + (rz_new / rz) * p
        rz = rz_new
    return 1000


def cg_iteration_counts(spec, voltages: np.ndarray) -> tuple[int, int]:
    """Return CG iterations on the full nodal matrix and on the bit-line Schur complement (one vector)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    from spicecross.sim.exact import NodalSystem

    system = NodalSystem(spec)
    free, fixed = system.free_idx, system.fixed_idx
    inc = system.incidence
    full = (system.laplacian + inc.T @ sp.diags(system.g_dev) @ inc).tocsr()
    matrix = full[free][:, free].tocsc()
    rhs = -(full[free][:, fixed] @ system.fixed_voltages(voltages[:1])[0, fixed])
    # Block Jacobi: drop the device couplings between word-line and bit-line nodes.
    names = [system.topology.names[k] for k in free]
    bit = np.array([name.startswith(("bl_", "sns_")) for name in names])
    same_side = sp.diags(bit.astype(float)) @ matrix @ sp.diags(bit.astype(float)) + \
        sp.diags((~bit).astype(float)) @ matrix @ sp.diags((~bit).astype(float))
    blocks = spla.splu(same_side.tocsc())
    full_count = pcg_iterations(lambda x: matrix @ x, blocks.solve, rhs)
    # Schur complement of the bit-line nodes: S = A_bb − A_bw·A_ww⁻¹·A_wb.
    word_idx, bit_idx = np.flatnonzero(~bit), np.flatnonzero(bit)
    a_ww = spla.splu(matrix[word_idx][:, word_idx].tocsc())
    a_bb = matrix[bit_idx][:, bit_idx].tocsc()
    a_bw, a_wb = matrix[bit_idx][:, word_idx], matrix[word_idx][:, bit_idx]
    schur_rhs = rhs[bit_idx] - a_bw @ a_ww.solve(rhs[word_idx])
    schur_count = pcg_iterations(lambda x: a_bb @ x - a_bw @ a_ww.solve(a_wb @ x), spla.splu(a_bb).solve,
                                 schur_rhs)
    return full_count, schur_count


def section_methods(sizes: dict, repeat: int, rng) -> list:
    from spicecross.sim.exact import solve_exact

    rows = []
    for size, vectors in sizes.items():
        spec = ngspice_crossbar(size, "linear", rng)
        v = rng.uniform(0.0, 0.5, (vectors, size))
        direct_wall, _, direct = timed(1, functools.partial(solve_exact, method="direct"), spec, v)
        auto_wall, _, fast = timed(repeat, solve_exact, spec, v)
        full_count, schur_count = cg_iteration_counts(spec, v)
        rows.append({"size": size, "vectors": vectors, "direct_wall": direct_wall, "auto_wall": auto_wall,
                     "auto_cg_iterations": float(np.mean(fast.info["cg_iterations"])),
                     "cg_full_iterations": full_count, "cg_schur_iterations": schur_count,
                     "agreement": agreement(fast.currents, direct.currents)})
        print(f"  (a) {size}×{size}: sparse LU {direct_wall:.3f} s, CG {auto_wall:.3f} s for {vectors} "
              f"vectors; CG iterations full {full_count}, Schur {schur_count}", file=sys.stderr, flush=True)
    return rows


def section_ngspice(sizes: dict, laws: tuple, repeat: int, rng) -> list:
    from spicecross.sim.exact import solve_exact

    rows = []
    for size, vectors in sizes.items():
        for law in laws:
            spec = ngspice_crossbar(size, law, rng)
            v = rng.uniform(0.0, 0.5, (vectors, size))
            spice = run_ngspice(spec, v)
            wall, cpu, exact = timed(repeat, solve_exact, spec, v)
            big = rng.uniform(0.0, 0.5, (BIG_BATCH, size))
            big_wall, big_cpu, _ = timed(repeat, solve_exact, spec, big)
            voltage_error = max_voltage_difference(exact, spice["result"])
            # ngspice accepts a Newton iterate once no node voltage changed by more than
            # vntol + reltol·|v| (NIconvTest in src/maths/ni/niconv.c), 5e-10 V at 0.5 V with
            # the default options, so a case that misses 1e-12 V runs again with tighter ones.
            tight_error = None
            if voltage_error > 1e-12:
                tight = run_ngspice(spec, v, TIGHT_OPTIONS)
                tight_error = max_voltage_difference(exact, tight["result"])
            row = {"size": size, "law": law, "vectors": vectors,
                   "ngspice_wall": spice["wall"], "ngspice_cpu": spice["cpu"],
                   "ngspice_uss_mb": spice["uss_peak_mb"],
                   "ngspice_version": spice["result"].info.get("ngspice_version"),
                   "exact_wall": wall, "exact_cpu": cpu,
                   "exact_big_wall_per_vector": big_wall / BIG_BATCH,
                   "exact_big_cpu_per_vector": big_cpu / BIG_BATCH,
                   "newton_iterations": float(np.mean(exact.info["newton_iterations"] or [0])),
                   "cg_iterations": float(np.mean(exact.info["cg_iterations"])),
                   "agreement": agreement(exact.currents, spice["result"].currents),
                   "voltage_error": voltage_error, "voltage_error_tight": tight_error}
            rows.append(row)
            print(f"  (b) {size}×{size} {law}: ngspice {spice['wall']:.2f} s, exact {wall:.4f} s for "
                  f"{vectors} vectors, agreement {row['agreement']:.2g}", file=sys.stderr, flush=True)
    return rows


def solve_badcrossbar(resistances, voltages):
    import badcrossbar

    solution = badcrossbar.compute(voltages.T, resistances, r_i_word_line=R_WORD_BC, r_i_bit_line=R_BIT_BC,
                                   node_voltages=False, all_currents=False)
    return np.asarray(solution.currents.output)


def section_badcrossbar(sizes: tuple, batches: tuple, repeat: int, rng) -> list:
    from spicecross.sim.exact import NodalSystem, solve_exact

    rows = []
    for size in sizes:
        for vectors in batches:
            resistances, v, spec = badcrossbar_case(size, vectors, rng)
            reps = repeat if size <= 256 else 1
            bc_wall, bc_cpu, bc_currents = timed(reps, solve_badcrossbar, resistances, v)
            wall, cpu, exact = timed(reps, solve_exact, spec, v)
            # The same solve in parts: building the system (topology, then matrices), then solving.
            builds = [NodalSystem(spec) for _ in range(reps)]
            fastest = min(builds, key=lambda system: sum(system.build_seconds.values()))
            solve_wall, _, _ = timed(reps, builds[-1].solve, v)
            difference = np.abs(exact.currents - bc_currents) / np.abs(bc_currents)
            row = {"size": size, "vectors": vectors, "badcrossbar_wall": bc_wall, "badcrossbar_cpu": bc_cpu,
                   "exact_wall": wall, "exact_cpu": cpu, "topology_wall": fastest.build_seconds["topology"],
                   "setup_wall": fastest.build_seconds["matrices"], "solve_wall": solve_wall,
                   "agreement": agreement(exact.currents, bc_currents),
                   "relative_difference": float(difference.max())}
            rows.append(row)
            print(f"  (c) {size}×{size}, {vectors} vectors: badcrossbar {bc_wall:.3f} s, exact {wall:.4f} s "
                  f"(solve only {solve_wall:.4f} s)", file=sys.stderr, flush=True)
    return rows


def fit_exponent(sizes, times) -> float:
    """Return b of the least-squares fit log t = log a + b·log N."""
    if len(sizes) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def _status_kib(field: str) -> int:
    """Return a field of /proc/self/status in KiB (VmRSS: current RSS, VmHWM: its peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS; return False where that is not possible.

    Writing 5 to /proc/self/clear_refs resets the peak since Linux 4.0 (proc_pid_clear_refs(5)).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child(method: str, size: int, vectors: int) -> None:
    """Measure one solve in this fresh process; print its wall time and RSS growth as JSON."""
    import tracemalloc

    rng = np.random.default_rng(size)
    resistances, v, spec = badcrossbar_case(size, vectors, rng)
    if method == "exact":
        from spicecross.sim.exact import solve_exact

        def function():
            return solve_exact(spec, v)
    else:
        import badcrossbar  # noqa: F401

        def function():
            return solve_badcrossbar(resistances, v)

    before = _status_kib("VmRSS")
    reset = _reset_peak_rss()
    base = before if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    function()
    wall = time.perf_counter() - start
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"wall": wall, "rss_added_mb": (peak - base) / 1024, "traced_peak_mb": traced / 2**20}))


def section_memory(sizes: tuple) -> list:
    rows = []
    for size in sizes:
        row = {"size": size}
        for method in ("exact", "badcrossbar"):
            out = subprocess.run([sys.executable, __file__, "--child", method, str(size)],
                                 capture_output=True, text=True, check=True)
            data = json.loads(out.stdout.strip().splitlines()[-1])
            row[f"{method}_rss_added_mb"] = data["rss_added_mb"]
            row[f"{method}_traced_peak_mb"] = data["traced_peak_mb"]
        rows.append(row)
        print(f"  (e) {size}×{size}: {row}", file=sys.stderr, flush=True)
    return rows


def _ngspice_row(r: dict) -> str:
    v = r["vectors"]
    voltage = f"{r['voltage_error']:.1e} V"
    if r["voltage_error_tight"] is not None:
        voltage += f" ({r['voltage_error_tight']:.1e} V)"
    cells = [f"{r['size']}×{r['size']}", r["law"], str(v),
             f"{r['ngspice_wall']:.2f} s ({r['ngspice_wall'] / v:.3g} s)",
             f"{r['exact_wall'] * 1e3:.1f} ms ({r['exact_wall'] / v * 1e3:.2f} ms)",
             f"{r['ngspice_wall'] / r['exact_wall']:,.0f}×", f"{r['ngspice_cpu'] / r['exact_cpu']:,.0f}×",
             f"{r['exact_big_wall_per_vector'] * 1e3:.2f} ms", f"{r['agreement']:.2g}",
             voltage, f"{r['newton_iterations']:.1f} / {r['cg_iterations']:.1f}"]
    return "| " + " | ".join(cells) + " |"


def _badcrossbar_row(r: dict) -> str:
    cells = [f"{r['size']}×{r['size']}", str(r["vectors"]), f"{r['badcrossbar_wall']:.3f} s",
             f"{r['exact_wall'] * 1e3:.1f} ms", f"{r['badcrossbar_wall'] / r['exact_wall']:.1f}×",
             f"{r['badcrossbar_cpu'] / r['exact_cpu']:.1f}×",
             f"{r['topology_wall'] * 1e3:.0f} / {r['setup_wall'] * 1e3:.0f} / {r['solve_wall'] * 1e3:.0f} ms",
             f"{r['badcrossbar_wall'] / r['solve_wall']:.1f}×", f"{r['agreement']:.2g}",
             f"{r['relative_difference']:.1e}"]
    return "| " + " | ".join(cells) + " |"


def _memory_row(r: dict) -> str:
    cells = [f"{r['size']}×{r['size']}"] + [
        f"{r[f'{method}_{kind}_mb']:.0f} MiB" for method in ("exact", "badcrossbar")
        for kind in ("rss_added", "traced_peak")]
    return "| " + " | ".join(cells) + " |"


def markdown(report: dict) -> str:
    """Format the report as the markdown tables of docs/benchmarks.md."""
    lines = []
    if report.get("methods"):
        lines += ["### (a) Method choice (linear devices)", "",
                  "| crossbar | vectors | sparse LU (`method=\"direct\"`) | CG on the Schur complement "
                  "(`auto`) | CG iterations, full matrix | CG iterations, Schur complement "
                  "| `auto`: CG iterations per vector | agreement |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['size']}×{r['size']} | {r['vectors']} | {r['direct_wall']:.3f} s | "
                  f"{r['auto_wall']:.3f} s | {r['cg_full_iterations']} | {r['cg_schur_iterations']} | "
                  f"{r['auto_cg_iterations']:.1f} | {r['agreement']:.2g} |" for r in report["methods"]]
        lines.append("")
    if report["ngspice"]:
        lines += ["### (b) Exact solver vs batched ngspice", "",
                  "| crossbar | law | vectors | ngspice wall (per vector) | exact wall (per vector) "
                  "| wall ratio | CPU ratio | exact, 64 vectors: wall per vector | agreement "
                  "| max Δv (with reltol=1e-12, vntol=1e-15) "
                  "| Newton / CG iterations |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_ngspice_row(r) for r in report["ngspice"]]
        lines.append("")
    if report["badcrossbar"]:
        lines += _badcrossbar_table(report["badcrossbar"])
    if report["exponents"]:
        lines += ["### (d) Cost exponent b of time ≈ a·N^b", "", "| method | what is fitted | sizes | b |",
                  "|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['fitted']} | {r['sizes']} | {r['exponent']:.2f} |"
                  for r in report["exponents"]]
        lines.append("")
    if report["memory"]:
        lines += ["### (e) Peak memory", "",
                  "| crossbar | exact: RSS added | exact: traced peak | badcrossbar: RSS added "
                  "| badcrossbar: traced peak |", "|---|---|---|---|---|"]
        lines += [_memory_row(r) for r in report["memory"]]
    spice_uss = [f"| {r['size']}×{r['size']} | {r['law']} | {r['ngspice_uss_mb']:.0f} MiB |"
                 for r in report["ngspice"] if r["ngspice_uss_mb"]]
    if spice_uss:
        lines += ["", "| crossbar | law | ngspice worker: peak USS (memory not shared with this script) |",
                  "|---|---|---|", *spice_uss]
    return "\n".join(lines).replace("\n\n\n", "\n\n").strip()


def _badcrossbar_table(rows: list) -> list:
    lines = ["### (c) Exact solver vs badcrossbar (linear devices)", "",
             "| crossbar | vectors | badcrossbar wall | exact wall | wall ratio | CPU ratio "
             "| exact: topology / setup / solve | ratio to solve only | agreement "
             "| max relative difference |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    return lines + [_badcrossbar_row(r) for r in rows] + [""]


def exponents(report: dict) -> list:
    out = []
    for law in sorted({r["law"] for r in report["ngspice"]}):
        rows = [r for r in report["ngspice"] if r["law"] == law]
        sizes = [r["size"] for r in rows]
        out.append({"method": f"ngspice, {law}", "fitted": "wall time of one run", "sizes": sizes,
                    "exponent": fit_exponent(sizes, [r["ngspice_wall"] for r in rows])})
        out.append({"method": f"exact, {law}", "fitted": f"wall time per vector, {BIG_BATCH} vectors",
                    "sizes": sizes,
                    "exponent": fit_exponent(sizes, [r["exact_big_wall_per_vector"] for r in rows])})
    for method in ("badcrossbar", "exact") if report["badcrossbar"] else ():
        rows = [r for r in report["badcrossbar"] if r["vectors"] == 1]
        sizes = [r["size"] for r in rows]
        out.append({"method": f"{method}, linear", "fitted": "wall time of one vector", "sizes": sizes,
                    "exponent": fit_exponent(sizes, [r[f"{method}_wall"] for r in rows])})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small crossbars only (16² and 32² against ngspice, up to 128² against "
                             "badcrossbar): about a minute")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each fast solve; the least time is reported (default 3)")
    parser.add_argument("--sections", default="abce",
                        help="sections to run, as letters: a (method choice), b (ngspice), c (badcrossbar), "
                             "e (memory); d is fitted from b and c (default abce)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this JSON file")
    parser.add_argument("--seed", type=int, default=2026, help="random seed of crossbars and inputs")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    logging.getLogger("badcrossbar").setLevel(logging.WARNING)
    if args.child:
        child(args.child[0], int(args.child[1]), 1)
        return 0

    rng = np.random.default_rng(args.seed)
    command = " ".join(["benchmarks/bench_exact.py", *(sys.argv[1:] if argv is None else argv)])
    report = {"command": command, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": machine(), "versions": versions()}
    print(f"{command}: started {report['date']}, load average {report['machine']['load_average']}",
          file=sys.stderr, flush=True)

    sizes_ng = SIZES_NGSPICE_QUICK if args.quick else SIZES_NGSPICE
    laws = LAWS_QUICK if args.quick else LAWS
    sizes_bc = SIZES_BADCROSSBAR_QUICK if args.quick else SIZES_BADCROSSBAR
    sizes_methods = SIZES_METHODS_QUICK if args.quick else SIZES_METHODS
    report["methods"] = section_methods(sizes_methods, args.repeat, rng) if "a" in args.sections else []
    report["ngspice"] = section_ngspice(sizes_ng, laws, args.repeat, rng) if "b" in args.sections else []
    report["badcrossbar"] = (section_badcrossbar(sizes_bc, (1,) if args.quick else (1, 16), args.repeat, rng)
                             if "c" in args.sections else [])
    report["exponents"] = exponents(report)
    report["memory"] = section_memory(sizes_bc) if "e" in args.sections else []

    report["load_average_end"] = os.getloadavg()
    report["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    m = report["machine"]
    print(f"Command: `.venv/bin/python {command}`. Machine: {m['nproc']} CPUs (nproc), {m['cpu']}, "
          f"{m['memory']}, {m['platform']}. Started {report['date']}, finished {report['finished']}; load "
          f"average {m['load_average'][0]:.1f} at the start and {report['load_average_end'][0]:.1f} at the "
          "end. "
          f"Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
          + (f", {report['ngspice'][0]['ngspice_version']}" if report["ngspice"] else "") + ".\n")
    print(markdown(report))
    if args.json:
        serializable = {**report}
        args.json.write_text(json.dumps(serializable, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
