import json

import numpy as np
import pytest
from nodal_reference import dense_linear_crossbar

from spicecross.crossbar.mapping import differential_output, map_differential, tile_grid
from spicecross.crossbar.spec import CrossbarSpec
from spicecross.crossbar.topology import build_topology
from spicecross.devices import builtin_device
from spicecross.netlist.writer import (
    HEADER_MARKER,
    device_order,
    format_crossbar_netlist,
    read_sidecar,
    write_crossbar_netlist,
)
from spicecross.sim.exact import solve_exact

RNG = np.random.default_rng(1)


def test_hand_computed_two_by_two():
    # Bit lines ideal (merged into the virtual grounds), word segments r: each word line is
    # a two-rung ladder. Node a: V/(1 + r·G1 + r·G2/(1 + r·G2)), node b: a/(1 + r·G2).
    g = np.array([[1e-3, 2e-3], [4e-3, 5e-4]])
    r = 10.0
    v = np.array([[0.3, 0.2]])
    expected = np.zeros(2)
    for i in range(2):
        g1, g2 = g[i]
        a = v[0, i] / (1 + r * g1 + r * g2 / (1 + r * g2))
        b = a / (1 + r * g2)
        expected += np.array([g1 * a, g2 * b])
    result = solve_exact(CrossbarSpec(g, r_word=r, r_bit=0.0), v)
    np.testing.assert_allclose(result.currents[0], expected, rtol=1e-12, atol=1e-15)


def test_ideal_wires_give_ohms_law():
    g = RNG.uniform(1e-5, 1e-4, (5, 7))
    v = RNG.uniform(0, 0.5, (3, 5))
    result = solve_exact(CrossbarSpec(g), v)
    np.testing.assert_allclose(result.currents, v @ g, rtol=1e-12)


def test_exact_matches_dense_reference():
    g = RNG.uniform(1e-5, 1e-3, (4, 6))
    v = RNG.uniform(-0.5, 0.5, (5, 4))
    spec = CrossbarSpec(g, r_word=3.0, r_bit=7.0, r_source=20.0, r_sense=5.0)
    expected = dense_linear_crossbar(g, v, 3.0, 7.0, 20.0, 5.0)
    np.testing.assert_allclose(solve_exact(spec, v).currents, expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("device", [builtin_device("linear"), builtin_device("power_law", n=3.0),
                                    builtin_device("sinh", v0=0.2), builtin_device("poole_frenkel")])
def test_power_breakdown_adds_up(device):
    g = RNG.uniform(1e-5, 1e-4, (6, 5))
    spec = CrossbarSpec(g, device=device, r_word=2.0, r_bit=3.0, r_source=15.0, r_sense=4.0, drive="both")
    result = solve_exact(spec, RNG.uniform(0, 0.5, (4, 6)))
    total = sum(result.power_breakdown.values())
    np.testing.assert_allclose(total, result.power, rtol=1e-10)
    assert set(result.power_breakdown) == {"devices", "word_wires", "bit_wires", "source", "sense"}


def test_power_without_wires_is_sum_of_v_times_i():
    g = RNG.uniform(1e-5, 1e-4, (4, 3))
    v = RNG.uniform(0, 0.5, (2, 4))
    device = builtin_device("power_law", n=2.8)
    result = solve_exact(CrossbarSpec(g, device=device), v)
    i_dev = device.law.current(v[:, :, None], g[None], n=2.8)
    np.testing.assert_allclose(result.power, np.sum(np.abs(v[:, :, None] * i_dev), axis=(1, 2)), rtol=1e-12)


def test_kirchhoff_current_balance():
    g = RNG.uniform(1e-5, 1e-4, (5, 5))
    spec = CrossbarSpec(g, device=builtin_device("sinh", v0=0.2), r_word=5.0, r_bit=5.0)
    result = solve_exact(spec, RNG.uniform(0, 0.5, (3, 5)))
    np.testing.assert_allclose(result.currents.sum(axis=1), result.driver_currents.sum(axis=(1, 2)), rtol=1e-10)


def test_zero_wire_merges_nodes():
    topo = build_topology(CrossbarSpec(np.full((3, 4), 1e-4), r_word=0.0, r_bit=0.0))
    assert "wl_r0_c0" not in topo.names
    assert len(topo.res_names) == 0
    assert topo.n_nodes == 3 + 4  # one node per driver and per virtual ground


def test_node_names_lower_case_and_unique():
    topo = build_topology(CrossbarSpec(np.full((3, 4), 1e-4), r_word=1.0, r_bit=1.0, r_source=1.0,
                                       r_sense=1.0, drive="both"))
    assert len(set(topo.names)) == len(topo.names)
    assert all(name == name.lower() for name in topo.names)
    assert {n.lower() for n in topo.names} == set(topo.names)


def test_per_segment_resistances():
    g = np.full((2, 3), 1e-4)
    r_word = np.array([[1.0, 0.0, 2.0], [3.0, 4.0, 0.0]])
    topo = build_topology(CrossbarSpec(g, r_word=r_word, r_bit=1.0))
    word = dict(zip(topo.res_names, topo.res_ohm))
    assert word["rwl_r0_s0"] == 1.0
    assert "rwl_r0_s1" not in word
    assert word["rwl_r1_s1"] == 4.0


@pytest.mark.parametrize("kwargs, message", [
    ({"conductances": np.array([[1e-4, -1e-5]])}, r"conductances\[0, 1\] = -1e-05"),
    ({"conductances": np.array([[1e-4, np.nan]])}, "not finite"),
    ({"conductances": np.array([[np.inf]])}, "not finite"),
    ({"conductances": np.array([[0.0]])}, "not positive"),
    ({"conductances": np.ones(3)}, "2-D"),
    ({"conductances": np.ones((2, 2)), "r_word": np.ones((3, 3))}, "r_word has shape"),
    ({"conductances": np.ones((2, 2)), "r_bit": -1.0}, "negative resistance"),
    ({"conductances": np.ones((2, 2)), "r_sense": np.inf}, "non-finite"),
    ({"conductances": np.ones((2, 2)), "drive": "east"}, "drive='east'"),
])
def test_bad_spec_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CrossbarSpec(**kwargs)


def test_mismatched_voltages():
    spec = CrossbarSpec(np.full((3, 2), 1e-4))
    with pytest.raises(ValueError, match=r"expected \(batch, 3\)"):
        solve_exact(spec, np.zeros((2, 4)))


def test_differential_mapping_formula():
    w = np.array([[0.5, -1.0], [2.0, 0.0]])
    m = map_differential(w, 1e-4, 5e-4)
    assert m.k_g == pytest.approx(2e-4)
    np.testing.assert_allclose(m.conductances[:, 0], [1e-4 + 1e-4, 1e-4 + 4e-4])
    np.testing.assert_allclose(m.conductances[:, 1], [1e-4, 1e-4])
    np.testing.assert_allclose(m.conductances[:, 3], [1e-4 + 2e-4, 1e-4])


def test_differential_output_recovers_product():
    w = RNG.normal(size=(6, 3))
    x = RNG.uniform(0, 1, (4, 6))
    m = map_differential(w, 1e-5, 5e-5)
    k_v = 0.5
    currents = solve_exact(CrossbarSpec(m.conductances), k_v * x).currents
    np.testing.assert_allclose(differential_output(currents, k_v, m.k_g), x @ w, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("g_off, g_on", [(0.0, 1e-4), (5e-4, 1e-4), (1e-4, np.nan)])
def test_bad_conductance_range(g_off, g_on):
    with pytest.raises(ValueError, match="G_off"):
        map_differential(np.ones((2, 2)), g_off, g_on)


def test_tile_grid_keeps_pairs():
    tiles = tile_grid(300, 50, tile_rows=128, tile_cols=15)
    assert all((t.col_stop - t.col_start) % 2 == 0 for t in tiles)
    covered = np.zeros((300, 50), dtype=int)
    for t in tiles:
        covered[t.row_start:t.row_stop, t.col_start:t.col_stop] += 1
    assert np.all(covered == 1)


def test_netlist_values_have_no_suffix():
    spec = CrossbarSpec(np.array([[1e6 ** -1, 2.5e-4]]), r_word=1e6, r_bit=1e-3)
    text = format_crossbar_netlist(spec, [[0.1]]).text
    assert " 1e+06" in text
    assert " 1M" not in text and " 1m" not in text


def test_netlist_has_no_midline_star():
    spec = CrossbarSpec(np.full((3, 3), 1e-4), r_word=1.0, r_bit=1.0)
    for line in format_crossbar_netlist(spec, np.zeros((2, 3))).text.splitlines():
        assert "*" not in line[1:] or line.startswith("*") or "=" in line, line


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (4, 4), (5, 3), (64, 64), (130, 10)])
def test_device_order_is_a_permutation(shape):
    order = device_order(*shape)
    assert sorted(order) == [(i, j) for i in range(shape[0]) for j in range(shape[1])]


def test_device_order_puts_the_separator_last():
    # 4x4: rows 0-1 (themselves cut at column 2), then row 3, then the cut row 2.
    assert device_order(4, 4) == [(0, 0), (0, 1), (1, 0), (1, 1), (0, 3), (1, 3), (0, 2), (1, 2),
                                  (3, 0), (3, 1), (3, 2), (3, 3), (2, 0), (2, 1), (2, 2), (2, 3)]
    assert device_order(64, 64)[-64:] == [(32, j) for j in range(64)]


def test_netlist_names_nodes_in_device_order():
    spec = CrossbarSpec(np.full((6, 6), 1e-4), r_word=1.0, r_bit=1.0)
    lines = format_crossbar_netlist(spec, np.zeros((2, 6))).text.splitlines()
    devices = [line.split()[0] for line in lines if line.startswith("xd_")]
    assert devices == [f"xd_r{i}_c{j}" for i, j in device_order(6, 6)]
    after_model = lines[next(k for k, line in enumerate(lines) if line.startswith(".ends")) + 1:]
    first_element = next(line for line in after_model if line[:1].isalpha())
    assert first_element.startswith("xd_")


def test_netlist_header_json():
    spec = CrossbarSpec(np.full((3, 2), 1e-4), r_word=2.0, r_bit=3.0)
    text = format_crossbar_netlist(spec, np.zeros((5, 3))).text
    header = next(line for line in text.splitlines() if line.startswith(HEADER_MARKER))
    data = json.loads(header[len(HEADER_MARKER):])
    assert (data["rows"], data["cols"], data["n_vectors"]) == (3, 2, 5)
    assert data["r_word_ohm"] == 2.0


def test_sidecar_round_trip(tmp_path):
    spec = CrossbarSpec(RNG.uniform(1e-5, 1e-4, (3, 4)), device=builtin_device("power_law", n=2.6),
                        r_word=np.arange(12.0).reshape(3, 4) + 1, r_bit=2.0, drive="west")
    v = RNG.uniform(0, 0.5, (2, 3))
    write_crossbar_netlist(tmp_path / "x.cir", format_crossbar_netlist(spec, v))
    spec2, v2, options = read_sidecar(tmp_path / "x.cir")
    np.testing.assert_array_equal(spec2.conductances, spec.conductances)
    np.testing.assert_array_equal(spec2.r_word, spec.r_word)
    np.testing.assert_array_equal(v2, v)
    assert spec2.device.params == {"n": 2.6}
    assert options["reltol"] == 1e-9


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    spec = CrossbarSpec(np.full((2, 2), 1e-4))
    netlist = format_crossbar_netlist(spec, np.zeros((1, 2)))

    def broken(path, text):
        raise OSError("disk full")

    import spicecross.netlist.writer as writer
    monkeypatch.setattr(writer, "write_text_atomic", broken)
    with pytest.raises(OSError):
        writer.write_crossbar_netlist(tmp_path / "x.cir", netlist)
    assert list(tmp_path.iterdir()) == []


def test_nonlinear_newton_converges_large_input():
    g = RNG.uniform(1e-4, 5e-4, (8, 8))
    spec = CrossbarSpec(g, device=builtin_device("poole_frenkel", d_eps=5e-18), r_word=5.0, r_bit=5.0)
    result = solve_exact(spec, np.full((1, 8), 0.5))
    assert result.info["newton_iterations"][0] < 30
