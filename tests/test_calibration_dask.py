"""Calibration sweeps sent to a Dask scheduler on loopback (ngspice in batch mode on its workers)."""

import numpy as np
import pytest

from spicecross.calibration import NetlistExecutor, sweep_device
from spicecross.devices import builtin_device


@pytest.mark.dask
@pytest.mark.ngspice
def test_device_sweep_on_dask_scheduler():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        with NetlistExecutor(scheduler=cluster.scheduler_address) as executor:
            sweep = sweep_device(builtin_device("power_law", n=2.5), [1e-5, 4e-5], executor)
    np.testing.assert_allclose(sweep.conductances, [1e-5, 4e-5], rtol=1e-6)
    assert sweep.ngspice_version.startswith("ngspice-")


def test_unreachable_scheduler_is_named_error():
    from spicecross.sweep import SchedulerUnavailableError

    with NetlistExecutor(scheduler="tcp://127.0.0.1:9", connect_timeout=1.0) as executor:
        with pytest.raises(SchedulerUnavailableError,
                           match="Dask scheduler at tcp://127.0.0.1:9 did not respond within 1 s"):
            executor.run("* nothing\n.end\n")
