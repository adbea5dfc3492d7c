"""The exact solver (chain-preconditioned CG + Newton) against independent references.

The main reference is a plain dense Newton solver written here: it stamps the nodal
matrix from the crossbar topology element by element and solves every Newton step
with ``numpy.linalg.solve``. Results must agree with it, and with the sparse-LU path
(``method="direct"``), within |a − b| ≤ 1e-9·|b| + 1e-15 A for currents and
1e-12 V for node voltages: the tolerance the solver promises against ngspice.
"""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from nodal_reference import dense_linear_crossbar
from threadpoolctl import threadpool_limits

import spicecross.sim.exact as exact
from spicecross.crossbar.spec import CrossbarSpec
from spicecross.crossbar.topology import build_topology
from spicecross.devices import builtin_device, get_device
from spicecross.errors import ConvergenceError, NetlistError
from spicecross.sim.exact import NodalSystem, solve_exact

RNG = np.random.default_rng(11)
DEVICES = {
    "linear": builtin_device("linear"),
    "power_law": builtin_device("power_law", n=2.7),
    "sinh": builtin_device("sinh", v0=0.2),
    "poole_frenkel": builtin_device("poole_frenkel"),
}


def dense_newton(spec: CrossbarSpec, voltages: np.ndarray) -> dict:
    """Solve ``spec`` by plain Newton with dense matrices; return currents, node voltages and power."""
    # One BLAS thread, because these matrices are small and waiting BLAS threads made
    # each solve ten times slower on a busy machine.
    with threadpool_limits(1):
        return _dense_newton(spec, voltages)


def _dense_newton(spec: CrossbarSpec, voltages: np.ndarray) -> dict:
    topo = build_topology(spec)
    n = topo.n_nodes
    lap = np.zeros((n, n))
    for a, b, ohm in zip(topo.res_a, topo.res_b, topo.res_ohm, strict=True):
        g = 1.0 / ohm
        lap[a, a] += g
        lap[b, b] += g
        lap[a, b] -= g
        lap[b, a] -= g
    pos, neg = topo.wl_nodes.ravel(), topo.bl_nodes.ravel()
    inc = np.zeros((pos.size, n))
    inc[np.arange(pos.size), pos] += 1.0
    inc[np.arange(pos.size), neg] -= 1.0
    law = spec.device.law
    params = {k: v.ravel() for k, v in spec.device.law_params(spec.shape).items()}
    g_dev = spec.conductances.ravel()

    def current(u):
        return law.current(inc @ u, g_dev, v_ref=spec.v_ref, **params)

    def residual(u):
        return lap @ u + inc.T @ current(u)

    free = ~topo.fixed_mask
    nodes = np.zeros((voltages.shape[0], n))
    for k, v in enumerate(voltages):
        u = np.zeros(n)
        for end in range(topo.ends):
            u[topo.driver_nodes[:, end]] = v
        scale = max(np.abs(v).max(), 1e-300)
        for _ in range(100):
            if not free.any():
                break
            f = residual(u)[free]
            slope = law.slope(inc @ u, g_dev, v_ref=spec.v_ref, **params)
            jac = (lap + inc.T @ (slope[:, None] * inc))[np.ix_(free, free)]
            step = np.linalg.solve(jac, -f)
            # Newton converges quadratically, so the error left after a step this small is
            # far below 1e-12 V. A stricter test would stall at the rounding floor.
            if np.abs(step).max() <= 1e-12 * scale:
                u[free] += step
                break
            t = 1.0
            trial = u.copy()
            trial[free] += step
            while np.linalg.norm(residual(trial)[free]) > np.linalg.norm(f) and t > 1e-8:
                t /= 2
                trial[free] = u[free] + t * step
            u = trial
        nodes[k] = u
    injection = np.array([residual(u) for u in nodes])
    fixed = topo.fixed_mask
    shape = (voltages.shape[0], spec.rows, spec.cols)
    return {"currents": -injection[:, topo.ground_nodes],
            "power": np.sum(nodes[:, fixed] * injection[:, fixed], axis=1),
            "wl_voltages": nodes[:, pos].reshape(shape), "bl_voltages": nodes[:, neg].reshape(shape)}


def assert_close(actual, expected, rtol, atol):
    """|a − b| ≤ rtol·|b| + atol, elementwise."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    excess = np.abs(actual - expected) - (rtol * np.abs(expected) + atol)
    assert excess.max() <= 0, (f"{np.sum(excess > 0)} entries differ; worst |a - b| = "
                               f"{np.max(np.abs(actual - expected)):.3e}")


def assert_matches(result, reference):
    assert_close(result.currents, reference["currents"], 1e-9, 1e-15)
    assert_close(result.wl_voltages, reference["wl_voltages"], 0.0, 1e-12)
    assert_close(result.bl_voltages, reference["bl_voltages"], 0.0, 1e-12)
    assert_close(result.power, reference["power"], 1e-9, 1e-18)


def wiring(style: str, rows: int, cols: int, drive: str) -> dict:
    """Wire resistances (Ω) for one of the test styles."""
    word_cols = cols + 1 if drive == "both" else cols
    if style == "scalar":
        return {"r_word": 2.0, "r_bit": 3.0, "r_source": 10.0, "r_sense": 5.0}
    if style == "per_segment":
        return {"r_word": RNG.uniform(0.5, 3.0, (rows, word_cols)),
                "r_bit": RNG.uniform(0.5, 3.0, (rows, cols)),
                "r_source": RNG.uniform(1.0, 20.0, rows), "r_sense": RNG.uniform(1.0, 20.0, cols)}
    if style == "some_zero":
        # About a third of the segments are ideal, so nodes merge and carry several devices.
        r_word = RNG.uniform(0.5, 3.0, (rows, word_cols)) * (RNG.random((rows, word_cols)) > 0.35)
        r_bit = RNG.uniform(0.5, 3.0, (rows, cols)) * (RNG.random((rows, cols)) > 0.35)
        return {"r_word": r_word, "r_bit": r_bit, "r_source": 0.0, "r_sense": 0.0}
    if style == "ideal_word":
        return {"r_word": 0.0, "r_bit": 2.0, "r_sense": 4.0}
    if style == "ideal_bit":
        return {"r_word": 2.0, "r_bit": 0.0, "r_source": 3.0}
    raise ValueError(style)


SHAPES = ((1, 1), (1, 5), (6, 1), (5, 7), (9, 4))
STYLES = ("scalar", "per_segment", "some_zero", "ideal_word", "ideal_bit")
# Every law, drive and wiring style once, with the shapes in rotation.
CASES = [(*SHAPES[k % len(SHAPES)], drive, style, law)
         for k, (law, drive, style) in enumerate(
             (law, drive, style) for law in DEVICES for drive in ("west", "both") for style in STYLES)]


@pytest.mark.parametrize("rows, cols, drive, style, law", CASES)
def test_matches_dense_newton(rows, cols, drive, style, law):
    g = RNG.uniform(1e-5, 1e-3, (rows, cols))
    spec = CrossbarSpec(g, device=DEVICES[law], drive=drive, **wiring(style, rows, cols, drive))
    v = RNG.uniform(-0.5, 0.5, (3, rows))
    result = solve_exact(spec, v)
    assert_matches(result, dense_newton(spec, v))
    assert result.info["solver"].startswith("chain-preconditioned CG")


@pytest.mark.parametrize("width", [0, 1 << 30], ids=["thomas", "lapack"])
@pytest.mark.parametrize("law", ["linear", "sinh"])
def test_chain_solvers_match_dense(monkeypatch, width, law):
    # Small batches use LAPACK's tridiagonal solver and large ones the Thomas
    # recurrence, so the test forces each in turn.
    monkeypatch.setattr(exact, "_LAPACK_MAX_WIDTH", width)
    g = RNG.uniform(1e-5, 1e-3, (9, 7))
    spec = CrossbarSpec(g, device=DEVICES[law], **wiring("per_segment", 9, 7, "west"))
    v = RNG.uniform(-0.5, 0.5, (5, 9))
    assert_matches(solve_exact(spec, v), dense_newton(spec, v))


@pytest.mark.parametrize("law", DEVICES)
@pytest.mark.parametrize("drive", ["west", "both"])
def test_cg_matches_sparse_lu(law, drive):
    g = RNG.uniform(1e-5, 1e-4, (16, 12))
    spec = CrossbarSpec(g, device=DEVICES[law], drive=drive, **wiring("per_segment", 16, 12, drive))
    v = RNG.uniform(-0.5, 0.5, (4, 16))
    fast = solve_exact(spec, v)
    direct = solve_exact(spec, v, method="direct")
    assert direct.info["solver"].startswith("scipy sparse LU")
    assert_matches(fast, {"currents": direct.currents, "power": direct.power,
                          "wl_voltages": direct.wl_voltages, "bl_voltages": direct.bl_voltages})


def test_linear_matches_dense_reference():
    g = RNG.uniform(1e-5, 1e-4, (12, 9))
    v = RNG.uniform(-0.5, 0.5, (5, 12))
    spec = CrossbarSpec(g, r_word=1.5, r_bit=2.0, r_source=8.0, r_sense=3.0)
    expected = dense_linear_crossbar(g, v, 1.5, 2.0, 8.0, 3.0)
    assert_close(solve_exact(spec, v).currents, expected, 1e-9, 1e-15)


def test_all_ideal_wires_give_ohms_law():
    g = RNG.uniform(1e-5, 1e-4, (4, 6))
    v = RNG.uniform(-0.5, 0.5, (3, 4))
    result = solve_exact(CrossbarSpec(g), v)
    assert_close(result.currents, v @ g, 1e-12, 0.0)
    assert result.info["cg_iterations"] == [0, 0, 0]


def test_large_batch_in_chunks(monkeypatch):
    g = RNG.uniform(1e-5, 1e-4, (12, 10))
    spec = CrossbarSpec(g, device=DEVICES["sinh"], r_word=1.0, r_bit=2.0, r_source=5.0, r_sense=5.0)
    v = RNG.uniform(-0.5, 0.5, (256, 12))
    whole = solve_exact(spec, v)
    system = NodalSystem(spec)
    monkeypatch.setattr(exact, "CHUNK_ENTRIES", 40 * system._n_slots)  # 7 chunks of 37 vectors
    chunked = system.solve(v)
    assert_close(chunked.currents, whole.currents, 1e-12, 1e-18)
    assert len(chunked.info["newton_iterations"]) == 256
    picked = RNG.choice(256, 8, replace=False)
    reference = dense_newton(spec, v[picked])
    assert_close(whole.currents[picked], reference["currents"], 1e-9, 1e-15)
    assert_close(whole.bl_voltages[picked], reference["bl_voltages"], 0.0, 1e-12)


def test_zero_input_vector_gives_zero():
    spec = CrossbarSpec(RNG.uniform(1e-5, 1e-4, (5, 5)), device=DEVICES["sinh"], r_word=2.0, r_bit=2.0)
    result = solve_exact(spec, np.zeros((2, 5)))
    assert np.all(result.currents == 0.0)
    assert np.all(result.power == 0.0)


def test_lu_fallback_when_cg_stops(monkeypatch):
    monkeypatch.setattr(exact, "CG_MAX_ITER", 1)
    g = RNG.uniform(1e-5, 1e-4, (7, 6))
    spec = CrossbarSpec(g, device=DEVICES["power_law"], r_word=2.0, r_bit=3.0, r_source=4.0, r_sense=4.0)
    v = RNG.uniform(-0.5, 0.5, (3, 7))
    result = solve_exact(spec, v)
    assert result.info["lu_factorizations"] > 0
    assert_matches(result, dense_newton(spec, v))


def test_lu_when_wires_are_not_chains(monkeypatch):
    monkeypatch.setattr(exact, "_chain_layout", lambda *args: None)
    spec = CrossbarSpec(RNG.uniform(1e-5, 1e-3, (5, 6)), device=DEVICES["sinh"], r_word=2.0, r_bit=1.0,
                        r_source=3.0, r_sense=2.0)
    v = RNG.uniform(-0.5, 0.5, (2, 5))
    result = solve_exact(spec, v)
    assert result.info["solver"].startswith("scipy sparse LU")
    assert_matches(result, dense_newton(spec, v))


def test_devices_as_strong_as_wires():
    # Devices conduct about as much as the wires, so the chain preconditioner is weak,
    # but CG still converges (in about 40 iterations in place of 10).
    g = RNG.uniform(0.05, 0.5, (8, 8))
    spec = CrossbarSpec(g, device=DEVICES["sinh"], r_word=2.0, r_bit=2.0, r_source=1.0, r_sense=1.0)
    v = RNG.uniform(0.0, 0.5, (2, 8))
    result = solve_exact(spec, v)
    assert result.info["lu_factorizations"] == 0
    assert_matches(result, dense_newton(spec, v))


def test_jacobian_solve_matches_dense():
    g = RNG.uniform(1e-5, 1e-3, (4, 5))
    spec = CrossbarSpec(g, device=DEVICES["sinh"], r_word=2.0, r_bit=3.0, r_source=7.0, r_sense=2.0,
                        drive="both")
    system = NodalSystem(spec)
    node_v, _ = system.solve_nodes(RNG.uniform(-0.5, 0.5, (2, 4)))
    rhs = RNG.normal(size=(2, system.free_idx.size))
    lam = system.jacobian_solve(node_v, rhs)
    free = system.free_idx
    for k in range(2):
        slope = system.device_slope(system.incidence @ node_v[k])
        jac = (system.laplacian + system.incidence.T @ sp.diags(slope) @ system.incidence).toarray()
        np.testing.assert_allclose(jac[np.ix_(free, free)] @ lam[k], rhs[k], rtol=1e-9, atol=1e-12)


def test_other_conductances_without_rebuild():
    spec = CrossbarSpec(RNG.uniform(1e-5, 1e-4, (5, 4)), device=DEVICES["poole_frenkel"], r_word=1.0,
                        r_bit=1.0)
    g_new = RNG.uniform(1e-5, 1e-4, (5, 4))
    v = RNG.uniform(0, 0.5, (2, 5))
    node_v, _ = NodalSystem(spec).solve_nodes(v, g_new)
    expected = solve_exact(CrossbarSpec(g_new, device=spec.device, r_word=1.0, r_bit=1.0), v)
    topo = build_topology(spec)
    assert_close(node_v[:, topo.wl_nodes.ravel()].reshape(2, 5, 4), expected.wl_voltages, 0.0, 1e-13)
    with pytest.raises(ValueError, match="expected \\(5, 4\\)"):
        NodalSystem(spec).solve_nodes(v, np.ones((4, 5)))


def test_overflowing_law_raises():
    spec = CrossbarSpec(np.full((3, 3), 1e-4), device=builtin_device("sinh", v0=1e-3), r_word=2.0, r_bit=2.0)
    with pytest.raises(ConvergenceError, match="overflows float64"):
        solve_exact(spec, np.full((1, 3), 1.0))


def test_steep_law_raises_singular_jacobian():
    spec = CrossbarSpec(np.full((4, 5), 5e-5), device=builtin_device("sinh", v0=0.002), r_word=2.0, r_bit=3.0)
    with pytest.raises(ConvergenceError, match="numerically singular"):
        solve_exact(spec, np.full((1, 4), 0.5))


def test_newton_iteration_limit_raises(monkeypatch):
    monkeypatch.setattr(exact, "NEWTON_MAX_ITER", 2)
    spec = CrossbarSpec(np.full((4, 5), 5e-5), device=builtin_device("sinh", v0=0.005), r_word=2.0, r_bit=3.0)
    with pytest.raises(ConvergenceError, match="did not converge in 2 iterations for 1 of 1"):
        solve_exact(spec, np.full((1, 4), 0.5))


def test_non_finite_wire_conductance_raises():
    spec = CrossbarSpec(np.full((2, 2), 1e-4), r_word=1e-320, r_bit=1.0)
    with pytest.raises(ConvergenceError, match="rwl_r0_s0 .* overflows float64"):
        solve_exact(spec, [[0.1, 0.2]])


def test_user_subckt_rejected():
    device = get_device(str(Path(__file__).parent / "data" / "devices" / "user_rram.lib"))
    with pytest.raises(NetlistError, match="ngspice engine"):
        NodalSystem(CrossbarSpec(np.full((2, 2), 1e-4), device=device))


def test_unknown_method_rejected():
    with pytest.raises(ValueError, match="method='lu' is invalid"):
        NodalSystem(CrossbarSpec(np.full((2, 2), 1e-4)), method="lu")
