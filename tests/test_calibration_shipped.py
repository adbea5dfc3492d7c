"""Shipped calibration results load without ngspice and behave as their index says."""

import numpy as np
import pytest
import torch

from spicecross.calibration import list_shipped_calibrations, load_shipped_calibration
from spicecross.surrogates import FittedLaw
from spicecross.surrogates.models import CrossbarSurrogate


def test_index_lists_law_and_surrogates():
    names = list_shipped_calibrations()
    assert "power_law_n_of_g" in names
    for level in ("high", "mid", "low"):
        for kind in ("device_only", "ir_drop", "learned"):
            assert f"power_law_n_of_g_2ohm_{level}_{kind}" in names


def test_shipped_law_recovers_coefficients():
    law, provenance = load_shipped_calibration("power_law_n_of_g")
    assert isinstance(law, FittedLaw)
    np.testing.assert_allclose(law.n_coeffs, [2.0, 0.15, 0.12], atol=1e-4)
    assert law.n_g_ref == 5e-4
    assert provenance["law_residual"] < 1e-4
    assert provenance["train_sweeps"]["ngspice_version"].startswith("ngspice-")


def test_shipped_surrogate_runs_with_provenance():
    model, provenance = load_shipped_calibration("power_law_n_of_g_2ohm_mid_learned")
    assert isinstance(model, CrossbarSurrogate)
    assert provenance["train_sweeps"]["conditions"]["r_word"] == 2.0
    g = torch.full((8, 6), 3e-5, dtype=torch.float64)
    v = torch.full((2, 8), 0.3, dtype=torch.float64)
    out = model(v, g)
    assert out.currents.shape == (2, 6)
    assert torch.all(out.currents > 0)


def test_unknown_shipped_name_lists_available():
    with pytest.raises(FileNotFoundError, match="available are"):
        load_shipped_calibration("no_such_result")
