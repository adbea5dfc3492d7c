"""Sweeps on a real Dask LocalCluster on 127.0.0.1, and a scheduler that does not respond."""

import os
import socket
import time

import numpy as np
import pytest

from spicecross.sim.exact import solve_exact
from spicecross.sweep import SchedulerUnavailableError, SweepStore, make_jobs, parse_config, run_sweep
from spicecross.sweep.executor import DaskExecutor

pytestmark = [pytest.mark.ngspice, pytest.mark.dask]


def assert_close(actual, expected, rtol, atol):
    """|a − b| ≤ rtol·|b| + atol, elementwise."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    bad = np.abs(actual - expected) > rtol * np.abs(expected) + atol
    assert not bad.any(), f"{bad.sum()} entries differ; worst {np.max(np.abs(actual - expected)):.3e}"


def make_config(tmp_path, **ngspice):
    return parse_config({
        "sweep": {"seed": 11, "cache": False, "save_voltages": True},
        "device": {"name": "power_law", "params": {"n": 2.8}},
        "array": {"sizes": [[4, 4], [3, 5]], "r_word": [1.0, 2.5], "r_bit": [1.5], "r_sense": [2.0]},
        "states": {"kinds": ["random", "all-on"]},
        "inputs": {"vectors_per_job": 3},
        "ngspice": {"timeout": 60.0, "retries": 1, **ngspice},
    })


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    cluster = LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    yield cluster
    cluster.close()


def test_dask_sweep_matches_exact(tmp_path, cluster):
    config = make_config(tmp_path)
    summary = run_sweep(config, output=tmp_path / "out", scheduler=cluster.scheduler_address)
    assert summary.ok
    assert summary.done == 2 * 2 * 2
    assert summary.executor.startswith(f"dask {cluster.scheduler_address}")
    store = SweepStore(tmp_path / "out")
    workers = set()
    for job in make_jobs(config):
        stored = store.read_job(job.job_id)
        exact = solve_exact(job.spec(), job.voltages)
        assert_close(stored["arrays"]["results/currents_a"], exact.currents, rtol=1e-9, atol=1e-15)
        assert_close(stored["arrays"]["results/power_w"], exact.power, rtol=1e-9, atol=1e-18)
        assert_close(stored["arrays"]["results/wl_voltages_v"], exact.wl_voltages, rtol=1e-9, atol=1e-12)
        workers.add(stored["attrs"]["worker"])
    # The attempts ran in the Dask worker processes, not in this one.
    assert not any(worker.endswith(f":{os.getpid()}") for worker in workers)


def test_dask_rejects_shared_mode(tmp_path, cluster):
    with pytest.raises(ValueError, match="mode = \"batch\""):
        run_sweep(make_config(tmp_path, mode="shared"), output=tmp_path / "out",
                  scheduler=cluster.scheduler_address)


def test_dask_version_probe(cluster):
    with DaskExecutor(cluster.scheduler_address, timeout=30) as executor:
        assert executor.ngspice_version().startswith("ngspice-")
        assert executor.slots == 2


def test_unreachable_scheduler_fails_fast(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The socket is closed now, so nothing listens on the port.
    address = f"tcp://127.0.0.1:{port}"
    config = parse_config({"device": {"name": "linear"}, "array": {"sizes": [2]},
                           "executor": {"connect_timeout": 1.0}, "sweep": {"cache": False}})
    start = time.perf_counter()
    with pytest.raises(SchedulerUnavailableError) as info:
        run_sweep(config, output=tmp_path / "out", scheduler=address)
    assert time.perf_counter() - start < 15
    message = str(info.value)
    assert address in message
    assert "did not respond within 1 s" in message
    assert "without --scheduler" in message
    assert not (tmp_path / "out").exists()


def test_invalid_scheduler_port_fails_at_once(tmp_path):
    config = parse_config({"device": {"name": "linear"}, "array": {"sizes": [2]},
                           "sweep": {"cache": False}})
    start = time.perf_counter()
    with pytest.raises(ValueError, match="invalid port '99999'"):
        run_sweep(config, output=tmp_path / "out", scheduler="tcp://127.0.0.1:99999")
    assert time.perf_counter() - start < 5
    assert not (tmp_path / "out").exists()
