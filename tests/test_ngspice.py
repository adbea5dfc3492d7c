"""Integration tests that run the real ngspice (shared library and batch mode)."""

import os
import resource
import subprocess
import sys
import time

import numpy as np
import pytest
from nodal_reference import dense_linear_crossbar

from spicecross.crossbar.spec import CrossbarSpec
from spicecross.devices import LAWS, builtin_device
from spicecross.errors import SimulationError, SimulatorNotFoundError
from spicecross.netlist.writer import format_crossbar_netlist, write_crossbar_netlist
from spicecross.sim.exact import solve_exact
from spicecross.sim.ngspice import find_library
from spicecross.sim.rawfile import read_raw
from spicecross.sim.runner import NgspiceRunner
from spicecross.sim.solve import solve, solve_file
from spicecross.units import format_value

pytestmark = pytest.mark.ngspice
RNG = np.random.default_rng(7)
DEVICES = [("linear", {}), ("power_law", {"n": 2.0}), ("power_law", {"n": 3.0}), ("sinh", {"v0": 0.15}),
           ("poole_frenkel", {}), ("poole_frenkel", {"d_eps": 5e-18, "temperature": 320.0})]


def assert_close(actual, expected, rtol, atol):
    """|a − b| ≤ rtol·|b| + atol, elementwise."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    bad = np.abs(actual - expected) > rtol * np.abs(expected) + atol
    assert not bad.any(), f"{bad.sum()} entries differ; worst {np.max(np.abs(actual - expected)):.3e}"


def _ngspice_and_exact(spec, v, mode):
    """Return the ngspice result (in ``mode``, one worker) and the exact result of ``spec`` at ``v``."""
    with NgspiceRunner(1, mode=mode) as runner:
        spice = solve(spec, v, engine="ngspice", runner=runner)
    return spice, solve_exact(spec, v)


@pytest.mark.parametrize("name, params", DEVICES)
def test_device_subckt_matches_python(name, params, ngspice_runner):
    device = builtin_device(name, **params)
    inst = device.instance_params(np.full((1, 1), 2e-4))
    values = " ".join(f"{k}={format_value(v[0, 0])}" for k, v in sorted(inst.items()))
    text = "\n".join([f"device sweep {name}", device.subckt_text, "vin a 0 0",
                      f"x1 a 0 {device.subckt_name} {values}", ".options reltol=1e-9 abstol=1e-15",
                      ".dc vin -0.5 0.5 0.01", ".end"])
    run = ngspice_runner.run(text)
    v = run.vectors["a"]
    i_spice = -run.vectors["vin#branch"]
    i_python = LAWS[name].current(v, 2e-4, **device.law_params())
    assert v.size == 101
    assert_close(i_spice, i_python, rtol=1e-6, atol=1e-15)


@pytest.mark.parametrize("name, params", DEVICES)
@pytest.mark.parametrize("mode", ["shared", "batch"])
def test_crossbar_ngspice_matches_exact(name, params, mode):
    g = RNG.uniform(1e-5, 5e-4, (6, 5))
    spec = CrossbarSpec(g, device=builtin_device(name, **params), r_word=2.0, r_bit=3.0, r_source=10.0,
                        r_sense=5.0)
    v = RNG.uniform(-0.5, 0.5, (4, 6))
    spice, exact = _ngspice_and_exact(spec, v, mode)
    assert_close(spice.currents, exact.currents, rtol=1e-9, atol=1e-15)
    assert_close(spice.wl_voltages, exact.wl_voltages, rtol=1e-9, atol=1e-12)
    assert_close(spice.bl_voltages, exact.bl_voltages, rtol=1e-9, atol=1e-12)
    assert_close(spice.power, exact.power, rtol=1e-9, atol=1e-18)
    assert spice.info["ngspice_version"].startswith("ngspice-")


def test_both_ends_and_ideal_wires(ngspice_runner):
    g = RNG.uniform(1e-5, 5e-4, (5, 4))
    for kwargs in ({"drive": "both", "r_word": 1.5, "r_bit": 2.0},
                   {"r_word": 0.0, "r_bit": 2.0}, {"r_word": 2.0, "r_bit": 0.0, "r_sense": 3.0}):
        spec = CrossbarSpec(g, device=builtin_device("sinh", v0=0.2), **kwargs)
        v = RNG.uniform(0, 0.5, (3, 5))
        spice = solve(spec, v, engine="ngspice", runner=ngspice_runner)
        assert_close(spice.currents, solve_exact(spec, v).currents, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("mode", ["shared", "batch"])
def test_both_ends_joined_by_ideal_word_line(mode):
    # With r_word = 0 both drivers of a row sit on one node. The netlist keeps the
    # west driver only, else ngspice's matrix is singular.
    g = RNG.uniform(1e-5, 5e-4, (7, 5))
    r_word = np.zeros((7, 6))
    r_word[3] = 1.0  # row 3 keeps its wires, so it still has two drivers
    v = RNG.uniform(0, 0.5, (3, 7))
    for r_bit in (0.0, 2.0):
        spec = CrossbarSpec(g, device=builtin_device("sinh", v0=0.2), drive="both", r_word=r_word,
                            r_bit=r_bit)
        text = format_crossbar_netlist(spec, v).text
        assert "bdrv_r0_e " not in text
        assert "bdrv_r3_e " in text
        spice, exact = _ngspice_and_exact(spec, v, mode)
        assert_close(spice.currents, exact.currents, rtol=1e-9, atol=1e-15)
        assert_close(spice.driver_currents, exact.driver_currents, rtol=1e-9, atol=1e-15)
        assert_close(spice.power, exact.power, rtol=1e-9, atol=1e-18)


def test_hand_computed_two_by_two_in_ngspice(ngspice_runner):
    g = np.array([[1e-3, 2e-3], [4e-3, 5e-4]])
    r, v = 10.0, np.array([[0.3, 0.2]])
    expected = np.zeros(2)
    for i in range(2):
        g1, g2 = g[i]
        a = v[0, i] / (1 + r * g1 + r * g2 / (1 + r * g2))
        expected += np.array([g1 * a, g2 * a / (1 + r * g2)])
    spice = solve(CrossbarSpec(g, r_word=r, r_bit=0.0), v, engine="ngspice", runner=ngspice_runner)
    assert_close(spice.currents[0], expected, rtol=1e-9, atol=1e-15)


def test_power_breakdown_adds_up_in_ngspice(ngspice_runner):
    spec = CrossbarSpec(RNG.uniform(1e-5, 5e-4, (4, 4)), device=builtin_device("power_law", n=2.5),
                        r_word=3.0, r_bit=3.0, r_source=8.0, r_sense=6.0)
    spice = solve(spec, RNG.uniform(0, 0.5, (3, 4)), engine="ngspice", runner=ngspice_runner)
    assert_close(sum(spice.power_breakdown.values()), spice.power, rtol=1e-9, atol=1e-18)


def test_generated_netlist_runs_in_plain_ngspice(tmp_path):
    g = RNG.uniform(1e-5, 5e-4, (5, 6))
    v = RNG.uniform(0, 0.5, (3, 5))
    spec = CrossbarSpec(g, r_word=2.0, r_bit=3.0, r_source=4.0, r_sense=5.0)
    cir, _ = write_crossbar_netlist(tmp_path / "plain.cir", format_crossbar_netlist(spec, v))
    proc = subprocess.run(["ngspice", "-b", "-n", "-r", "out.raw", str(cir)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    vectors = read_raw(tmp_path / "out.raw")
    currents = np.stack([vectors[f"vsns_c{j}#branch"] for j in range(6)], axis=1)
    assert_close(currents, dense_linear_crossbar(g, v, 2.0, 3.0, 4.0, 5.0), rtol=1e-9, atol=1e-15)


def test_solve_file_both_engines(tmp_path, ngspice_runner):
    spec = CrossbarSpec(RNG.uniform(1e-5, 5e-4, (3, 4)), device=builtin_device("power_law", n=2.4),
                        r_word=1.0, r_bit=1.0)
    v = RNG.uniform(0, 0.5, (2, 3))
    cir, _ = write_crossbar_netlist(tmp_path / "f.cir", format_crossbar_netlist(spec, v))
    a = solve_file(cir, engine="ngspice", runner=ngspice_runner)
    b = solve_file(cir, engine="exact")
    assert_close(a.currents, b.currents, rtol=1e-9, atol=1e-15)


def test_lint_errors_stop_edited_solve(tmp_path):
    spec = CrossbarSpec(np.full((2, 2), 1e-4))
    path, _ = write_crossbar_netlist(tmp_path / "x.cir", format_crossbar_netlist(spec, [[0.1, 0.2]]))
    text = path.read_text()
    path.write_text(text.replace("g=1e-04", "g=-2e-04", 1))
    with pytest.raises(ValueError) as info:
        solve_file(path, engine="ngspice")
    message = str(info.value)
    assert "1 lint error(s)" in message
    assert "device-param-range" in message
    assert "spicecross netlist inspect" in message


def test_bad_netlist_reports_output(ngspice_runner):
    text = "bad\nv1 a 0 1\nx1 a 0 no_such_model\n.op\n.end\n"
    with pytest.raises(SimulationError) as info:
        ngspice_runner.run(text)
    assert "unknown subckt" in str(info.value).lower()
    assert info.value.netlist == text
    assert info.value.ngspice_version.startswith("ngspice-")


def test_runner_survives_crash_and_hang():
    with NgspiceRunner(1, timeout=2.0) as runner:
        crash = runner._executor().submit(os._exit, 1)
        with pytest.raises(SimulationError, match="crashed"):
            runner.result(crash, "")
        hang = runner._executor().submit(time.sleep, 30)
        with pytest.raises(SimulationError, match="timed out"):
            runner.result(hang, "")
        spec = CrossbarSpec(np.full((2, 2), 1e-4))
        result = solve(spec, [[0.1, 0.2]], engine="ngspice", runner=runner)
        assert_close(result.currents[0], [3e-5, 3e-5], rtol=1e-9, atol=1e-15)


_ORPHAN_SCRIPT = """
import sys, time
import numpy as np
from spicecross.crossbar.spec import CrossbarSpec
from spicecross.netlist.writer import format_crossbar_netlist
from spicecross.sim.runner import NgspiceRunner

# A 128x128 crossbar: ngspice needs tens of seconds to order and factor its matrix.
spec = CrossbarSpec(np.full((128, 128), 1e-4), r_word=1.0, r_bit=1.0)
text = format_crossbar_netlist(spec, np.full((1, 128), 0.2)).text
if sys.argv[1] == "thread":
    # As the sweep engine's batch mode does: ngspice started from threads of this process.
    import os, threading
    from spicecross.sim.ngspice import run_batch
    for _ in range(2):
        threading.Thread(target=run_batch, args=(text,), daemon=True).start()
    print(os.getpid(), flush=True)
else:
    runner = NgspiceRunner(2, mode=sys.argv[1], timeout=600.0)
    futures = [runner.submit(text) for _ in range(2)]
    print(" ".join(str(pid) for pid in runner._pool._processes), flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.parametrize("mode", ["shared", "batch", "thread"])
def test_killed_parent_stops_ngspice(mode):
    import psutil

    parent = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT, mode], stdout=subprocess.PIPE,
                              text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == (1 if mode == "thread" else 2)
        if mode in ("batch", "thread"):
            def ngspice_children():
                return [child.pid for pid in workers if not _gone(pid)
                        for child in psutil.Process(pid).children()]

            assert _wait_until(lambda: len(ngspice_children()) == 2, 30.0)
            programs = ngspice_children()
        else:
            programs = []
            time.sleep(1.0)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
    for pid in workers + programs:
        assert _wait_until(lambda pid=pid: _gone(pid), 10.0), f"process {pid} still runs"


def test_shared_workers_remove_their_folders(tmp_path, monkeypatch):
    import tempfile

    # The workers fork from this process, so they make their folders in tmp_path,
    # where no other process on the machine adds any.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    text = format_crossbar_netlist(CrossbarSpec(np.full((2, 2), 1e-4)), [[0.1, 0.2]]).text
    with NgspiceRunner(2, mode="shared") as runner:
        for _ in range(4):
            runner.run(text)
    assert list(tmp_path.glob("spicecross-ng-*")) == []


def _memory_growth(n_runs: int) -> float:
    from spicecross.sim.ngspice import SharedNgspice

    spec = CrossbarSpec(np.full((16, 16), 1e-4), device=builtin_device("sinh"), r_word=1.0, r_bit=1.0)
    text = format_crossbar_netlist(spec, np.full((4, 16), 0.2)).text
    session = SharedNgspice()
    for _ in range(20):
        session.run(text)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(n_runs):
        session.run(text)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024.0


def test_memory_flat_over_repeated_solves():
    import concurrent.futures as cf
    import multiprocessing

    with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        growth_mb = pool.submit(_memory_growth, 150).result(timeout=300)
    assert growth_mb < 8.0


def test_wrong_library_path_names_fix(monkeypatch):
    monkeypatch.setenv("NGSPICE_LIBRARY_PATH", "/nonexistent/libngspice.so.0")
    with pytest.raises(SimulatorNotFoundError, match="unset it"):
        find_library()


def test_missing_library_names_install(monkeypatch):
    import spicecross.sim.ngspice as ngspice

    monkeypatch.delenv("NGSPICE_LIBRARY_PATH", raising=False)
    monkeypatch.setattr(ngspice.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(ngspice.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(SimulatorNotFoundError, match="apt-get install ngspice libngspice0"):
        find_library()


@pytest.mark.parametrize("mode", ["shared", "batch"])
def test_user_spiceinit_is_never_read(tmp_path, monkeypatch, mode):
    marker = tmp_path / "spiceinit-was-read"
    for folder in (tmp_path, tmp_path / "home"):
        folder.mkdir(exist_ok=True)
        (folder / ".spiceinit").write_text(f"* init file\nshell touch {marker}\n")
        (folder / "spinit").write_text(f"shell touch {marker}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with NgspiceRunner(1, mode=mode) as runner:
        result = solve(CrossbarSpec(np.full((2, 2), 1e-4)), [[0.1, 0.2]], engine="ngspice", runner=runner)
    assert_close(result.currents[0], [3e-5, 3e-5], rtol=1e-9, atol=1e-15)
    assert not marker.exists()
