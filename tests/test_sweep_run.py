"""Sweeps on local workers with the real ngspice: results, failures, resume, cache and CLI."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from spicecross.sim.exact import solve_exact
from spicecross.sweep import SweepStore, load_config, make_jobs, parse_config, run_sweep
from spicecross.sweep.store import read_h5

pytestmark = pytest.mark.ngspice
REPO = Path(__file__).resolve().parents[1]
NGSPICE = "/usr/bin/ngspice"


def assert_close(actual, expected, rtol, atol):
    """|a − b| ≤ rtol·|b| + atol, elementwise."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    bad = np.abs(actual - expected) > rtol * np.abs(expected) + atol
    assert not bad.any(), f"{bad.sum()} entries differ; worst {np.max(np.abs(actual - expected)):.3e}"


def sweep_config(tmp_path, **tables):
    """A small sinh sweep, with ``tables`` merged over it; the cache sits in tmp_path."""
    data = {
        "sweep": {"seed": 3, "cache": str(tmp_path / "cache")},
        "device": {"name": "sinh", "params": {"v0": 0.15}},
        "array": {"sizes": [[4, 5]], "r_word": [1.0], "r_bit": [2.0], "r_source": [3.0], "r_sense": [4.0]},
        "states": {"kinds": ["random"], "count": 1},
        "inputs": {"vectors_per_job": 3, "batches": 1},
        "ngspice": {"timeout": 60.0, "retries": 1},
    }
    for table, values in tables.items():
        data.setdefault(table, {}).update(values)
    return parse_config(data, source=tmp_path / "sweep.toml")


def check_against_exact(config, store, jobs=None):
    """Compare every stored job with the exact solver."""
    for job in jobs or make_jobs(config):
        stored = store.read_job(job.job_id)
        exact = solve_exact(job.spec(), job.voltages)
        arrays = stored["arrays"]
        assert_close(arrays["results/currents_a"], exact.currents, rtol=1e-9, atol=1e-15)
        assert_close(arrays["results/power_w"], exact.power, rtol=1e-9, atol=1e-18)
        for part, values in exact.power_breakdown.items():
            assert_close(arrays[f"results/power_breakdown_w/{part}"], values, rtol=1e-8, atol=1e-18)
        if job.save_voltages:
            assert_close(arrays["results/wl_voltages_v"], exact.wl_voltages, rtol=1e-9, atol=1e-12)
            assert_close(arrays["results/bl_voltages_v"], exact.bl_voltages, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(arrays["inputs/voltages_v"], job.voltages)


@pytest.fixture
def fake_ngspice(tmp_path, monkeypatch):
    """Put an ``ngspice`` wrapper first on PATH that crashes or hangs on marked netlists.

    A netlist containing a resistance of 7.77 Ω makes it die of SIGSEGV; 8.88 Ω makes it
    hang; 9.99 Ω without an ``itl1`` option (the first attempt) makes it crash once per
    attempt until a convergence aid is applied. Everything else runs the real ngspice.
    """
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    script = folder / "ngspice"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        for last; do :; done
        if [ -f "$last" ]; then
            if grep -q "7.77e+00" "$last"; then kill -SEGV $$; fi
            if grep -q "8.88e+00" "$last"; then exec sleep 60; fi
            if grep -q "9.99e+00" "$last" && ! grep -q "itl1=" "$last"; then kill -SEGV $$; fi
            if [ -n "$SWEEP_TEST_DELAY" ]; then sleep "$SWEEP_TEST_DELAY"; fi
        fi
        exec {NGSPICE} "$@"
    """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    return folder


def test_local_sweep_matches_exact(tmp_path):
    config = sweep_config(tmp_path, sweep={"save_voltages": True},
                          array={"sizes": [[4, 5], [3, 3]], "r_word": [1.0, 0.0], "drive": "both"},
                          states={"kinds": ["random", "checkerboard", "ramp"]}, inputs={"batches": 2})
    summary = run_sweep(config, output=tmp_path / "out")
    assert summary.ok
    assert summary.jobs_total == 2 * 2 * 3 * 2
    assert summary.done == summary.jobs_total
    assert summary.ngspice_runs == summary.jobs_total
    assert summary.vectors_solved == 3 * summary.jobs_total
    assert summary.ngspice_version.startswith("ngspice-")
    store = SweepStore(tmp_path / "out")
    check_against_exact(config, store)

    manifest = json.loads(store.manifest_path.read_text())
    assert [entry["job_id"] for entry in manifest["jobs"]] == [job.job_id for job in make_jobs(config)]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["done"] == summary.done


def test_job_file_provenance(tmp_path):
    config = sweep_config(tmp_path, ngspice={"options": {"reltol": 1e-10}})
    run_sweep(config, output=tmp_path / "out")
    job = make_jobs(config)[0]
    stored = read_h5(SweepStore(tmp_path / "out").job_path(job.job_id))
    attrs = stored["attrs"]
    import hashlib

    netlist = job.netlist({"reltol": 1e-10}).text
    assert attrs["status"] == "ok"
    assert attrs["netlist_sha256"] == hashlib.sha256(netlist.encode()).hexdigest()
    assert attrs["device_name"] == "sinh"
    assert json.loads(attrs["device_params"]) == {"v0": 0.15}
    assert attrs["ngspice_version"].startswith("ngspice-")
    assert json.loads(attrs["ngspice_options"])["reltol"] == 1e-10
    assert attrs["seed"] == 3
    assert attrs["spicecross_version"]
    assert attrs["created_utc"].endswith("+00:00")
    assert attrs["result_source"] == "run"
    assert attrs["r_source_ohm"] == 3.0
    assert "Circuit: spicecross crossbar" in stored["texts"]["ngspice/output"]


def test_nonconverging_job_retried_then_reported(tmp_path):
    # I = g·V + c·sgn(V) has no DC solution when a series resistance R gives 0 < V_in < 2·R·c.
    (tmp_path / "step.lib").write_text(".subckt stepdev pos neg g=1e-4 c=1e-3\n"
                                       "b1 pos neg i=g*v(pos,neg)+c*sgn(v(pos,neg))\n.ends stepdev\n")
    config = sweep_config(tmp_path, device={"name": "step.lib", "params": {}},
                          array={"sizes": [[3, 3]], "r_word": [0.0], "r_bit": [0.0],
                                 "r_source": [0.0, 1000.0], "r_sense": [0.0]},
                          ngspice={"retries": 2})
    summary = run_sweep(config, output=tmp_path / "out")
    assert not summary.ok
    assert summary.done == 1
    assert len(summary.failed) == 1
    failed = summary.failed[0]
    assert failed["kind"] == "convergence"
    assert failed["attempts"] == 3
    assert failed["labels"]["r_source_ohm"] == 1000.0
    assert summary.ngspice_runs == 1 + 3

    store = SweepStore(tmp_path / "out")
    netlist = Path(failed["netlist"]).read_text()
    assert "stepdev" in netlist
    assert "srcsteps=2e+01" in netlist  # the last attempt had the stepping aid
    record = read_h5(store.failure_path(failed["job_id"]))
    assert record["attrs"]["status"] == "failed"
    assert record["attrs"]["failure_kind"] == "convergence"
    assert record["attrs"]["ngspice_version"].startswith("ngspice-")
    assert record["attrs"]["convergence_aid"] == "stepping"
    assert "timestep too small" in record["texts"]["ngspice/output"].lower()
    assert record["texts"]["ngspice/netlist"] == netlist
    assert failed["job_id"] not in store.finished_ids()


def test_crash_and_hang_cost_one_job(tmp_path, fake_ngspice):
    config = sweep_config(tmp_path, array={"r_source": [3.0, 7.77, 8.88, 9.99]},
                          ngspice={"timeout": 1.5, "retries": 1})
    start = time.perf_counter()
    summary = run_sweep(config, output=tmp_path / "out")
    elapsed = time.perf_counter() - start
    kinds = {item["labels"]["r_source_ohm"]: item["kind"] for item in summary.failed}
    assert kinds == {7.77: "crash", 8.88: "timeout"}
    assert summary.done == 2
    assert summary.retried == 1
    assert summary.aids == {"more-iterations": 1}
    assert summary.ngspice_runs == 1 + 2 + 2 + 2
    # Two attempts of the hanging job, 1.5 s each, and nothing waits much longer.
    assert elapsed < 30

    store = SweepStore(tmp_path / "out")
    jobs = {job.labels["r_source_ohm"]: job for job in make_jobs(config)}
    check_against_exact(config, store, [jobs[3.0], jobs[9.99]])
    rescued = read_h5(store.job_path(jobs[9.99].job_id))["attrs"]
    assert rescued["convergence_aid"] == "more-iterations"
    assert rescued["attempts"] == 2
    crash = read_h5(store.failure_path(jobs[7.77].job_id))["attrs"]
    assert "exit code -11" in crash["failure_message"]


def test_cache_serves_rescued_job(tmp_path, fake_ngspice):
    config = sweep_config(tmp_path, array={"r_source": [9.99]})
    first = run_sweep(config, output=tmp_path / "a")
    assert first.done == 1
    assert first.retried == 1
    # The rerun finds the result of the aided attempt without running the failing one again.
    second = run_sweep(config, output=tmp_path / "b")
    assert second.cached == 1
    assert second.retried == 0
    assert second.ngspice_runs == 0
    assert second.aids == {"more-iterations": 1}


def test_cache_serves_identical_netlists(tmp_path):
    config = sweep_config(tmp_path, states={"count": 2}, inputs={"batches": 2})
    first = run_sweep(config, output=tmp_path / "a")
    assert first.done == 4
    assert first.cached == 0
    second = run_sweep(config, output=tmp_path / "b")
    assert second.cached == 4
    assert second.done == 0
    assert second.ngspice_runs == 0
    store_a, store_b = SweepStore(tmp_path / "a"), SweepStore(tmp_path / "b")
    for job in make_jobs(config):
        a, b = store_a.read_job(job.job_id), store_b.read_job(job.job_id)
        np.testing.assert_array_equal(a["arrays"]["results/currents_a"], b["arrays"]["results/currents_a"])
        assert b["attrs"]["result_source"] == "cache"
        assert b["attrs"]["netlist_sha256"] == a["attrs"]["netlist_sha256"]

    # An entry without node voltages does not serve a job that asks for them.
    with_voltages = sweep_config(tmp_path, sweep={"save_voltages": True}, states={"count": 2},
                                 inputs={"batches": 2})
    third = run_sweep(with_voltages, output=tmp_path / "c")
    assert third.done == 4
    assert third.cached == 0
    check_against_exact(with_voltages, SweepStore(tmp_path / "c"))
    # Nor does a cache of another sweep folder once disabled.
    no_cache = sweep_config(tmp_path, sweep={"cache": False}, states={"count": 2}, inputs={"batches": 2})
    assert run_sweep(no_cache, output=tmp_path / "d").done == 4


def test_resume_after_kill(tmp_path, fake_ngspice):
    config_path = tmp_path / "sweep.toml"
    config_path.write_text(textwrap.dedent("""
        [sweep]
        cache = false
        [device]
        name = "linear"
        [array]
        sizes = [[3, 3]]
        r_word = [1.0, 2.0, 3.0]
        r_bit = [1.0, 2.0]
        [inputs]
        vectors_per_job = 2
        batches = 2
        [executor]
        workers = 2
    """))
    out = tmp_path / "out"
    env = {**os.environ, "SWEEP_TEST_DELAY": "0.4"}
    proc = subprocess.Popen([sys.executable, "-m", "spicecross.cli.sweep", str(config_path), "-o", str(out),
                             "--no-progress"], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((out / "jobs").glob("*.h5"))) < 4:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    before = {}
    for path in (out / "jobs").glob("*.h5"):
        before[path.stem] = (path.stat().st_ino, path.stat().st_mtime_ns)
    config = load_config(config_path)
    jobs = make_jobs(config)
    assert 4 <= len(before) < len(jobs), "the sweep was not interrupted midway"

    summary = run_sweep(config, output=out)
    assert summary.skipped == len(before)
    assert summary.done == len(jobs) - len(before)
    files = sorted((out / "jobs").glob("*.h5"))
    assert sorted(path.stem for path in files) == sorted(job.job_id for job in jobs)
    assert not list(out.rglob("*.tmp"))
    for path in files:
        if path.stem in before:
            identity = (path.stat().st_ino, path.stat().st_mtime_ns)
            assert identity == before[path.stem], f"finished job {path.stem} was rerun"
    check_against_exact(config, SweepStore(out))


def test_cli_json_summary(tmp_path, capsys, fake_ngspice):
    from spicecross.cli.sweep import main

    config_path = tmp_path / "sweep.toml"
    config_path.write_text(textwrap.dedent(f"""
        [sweep]
        cache = "{tmp_path / 'cache'}"
        [device]
        name = "power_law"
        params = {{ n = 2.5 }}
        [array]
        sizes = [3]
        r_word = [1.0, 7.77]
        [inputs]
        vectors_per_job = 2
        [ngspice]
        retries = 0
    """))
    status = main([str(config_path), "-o", str(tmp_path / "out"), "--json", "--no-progress"])
    out = capsys.readouterr().out
    assert status == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["jobs_total"] == 2
    assert summary["done"] == 1
    assert summary["failed_count"] == 1
    assert summary["failed"][0]["kind"] == "crash"
    assert summary["vectors_solved"] == 2
    assert summary["ngspice_version"].startswith("ngspice-")
    assert summary["wall_time_s"] > 0

    status = main([str(config_path), "-o", str(tmp_path / "out2"), "--workers", "1", "--no-progress"])
    text = capsys.readouterr().out
    assert status == 1
    assert "served from cache 1" in text
    assert "FAILED job" in text

    status = main([str(tmp_path / "missing.toml"), "--no-progress"])
    assert status == 2
    assert "not found" in capsys.readouterr().err


def test_cli_progress_bar_on_stderr(tmp_path):
    config_path = REPO / "calibration" / "sweep-quick.toml"
    proc = subprocess.run([sys.executable, "-m", "spicecross.cli.sweep", str(config_path), "-o",
                           str(tmp_path / "out"), "--json"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["done"] == 12
    assert "12/12" in proc.stderr


def _rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def _memory_growth(tmp_path, n_jobs: int) -> tuple[float, float]:
    """Run ``n_jobs`` tiny jobs in one shared-mode worker; return (worker, driver) RSS growth, MB."""
    import psutil

    from spicecross.sweep.executor import LocalExecutor

    config = sweep_config(tmp_path, sweep={"cache": False}, array={"sizes": [[6, 6]]},
                          inputs={"vectors_per_job": 2, "batches": n_jobs}, ngspice={"mode": "shared"})
    samples = []

    class Sampler:
        def start(self, total, skipped):
            pass

        def update(self, status, job):
            children = psutil.Process().children(recursive=True)
            worker = max((_rss_mb(child.pid) for child in children), default=0.0)
            samples.append((worker, _rss_mb(os.getpid())))

    with LocalExecutor(1, mode="shared", timeout=60, max_tasks_per_child=200) as executor:
        summary = run_sweep(config, output=tmp_path / "out", executor=executor, progress=Sampler())
    assert summary.done == n_jobs
    window = max(5, n_jobs // 5)
    warm = samples[window:2 * window]
    last = samples[-window:]
    worker_growth = max(s[0] for s in last) - max(s[0] for s in warm)
    driver_growth = max(s[1] for s in last) - max(s[1] for s in warm)
    return worker_growth, driver_growth


def test_memory_flat_over_repeated_solves(tmp_path):
    worker_growth, driver_growth = _memory_growth(tmp_path, 120)
    assert worker_growth < 10.0
    assert driver_growth < 20.0


@pytest.mark.slow
def test_memory_flat_over_1000_solves(tmp_path):
    worker_growth, driver_growth = _memory_growth(tmp_path, 1000)
    assert worker_growth < 10.0
    assert driver_growth < 20.0
