import importlib.util
from pathlib import Path

import numpy as np
import pytest

from spicecross.sim.solve import solve_file

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "netlists"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_golden", REPO / "scripts" / "make_golden_netlists.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_golden_netlists_regenerate_byte_for_byte(tmp_path):
    _load_script().main(tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in GOLDEN.iterdir() if p.suffix in (".cir", ".json"))
    assert written == committed
    for name in written:
        assert (tmp_path / name).read_bytes() == (GOLDEN / name).read_bytes(), name


@pytest.mark.ngspice
@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.cir")), ids=lambda p: p.stem)
def test_golden_netlist_matches_exact(path, ngspice_runner):
    spice = solve_file(path, engine="ngspice", runner=ngspice_runner)
    exact = solve_file(path, engine="exact")
    np.testing.assert_allclose(spice.currents, exact.currents, rtol=1e-9, atol=1e-15)
