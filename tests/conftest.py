"""Shared fixtures: one ngspice worker pool for the whole test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ngspice_runner():
    """A one-worker ngspice pool, shared by the tests that run ngspice."""
    from spicecross.sim.runner import NgspiceRunner

    runner = NgspiceRunner(1, timeout=300)
    yield runner
    runner.close()
