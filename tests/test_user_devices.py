from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq

from spicecross.crossbar.spec import CrossbarSpec
from spicecross.devices import get_device, load_subckt_device
from spicecross.devices.library import DeviceModelWarning
from spicecross.errors import NetlistError, UnsafeNetlistError
from spicecross.netlist.writer import format_crossbar_netlist
from spicecross.sim.exact import solve_exact
from spicecross.sim.solve import solve

DATA = Path(__file__).parent / "data" / "devices"


def test_header_with_continuation_line():
    device = load_subckt_device(DATA / "user_rram.lib")
    assert device.subckt_name == "user_rram"
    assert device.pins == ("top", "bottom")
    assert set(device.defaults) == {"r", "v0"}
    assert device.conductance_param == "r"


def test_three_pins_rejected():
    with pytest.raises(NetlistError, match="3 pins"):
        load_subckt_device(DATA / "three_pin.lib")


def test_text_without_subckt_rejected():
    with pytest.raises(NetlistError, match="no .subckt"):
        load_subckt_device("* only a comment\nr1 a b 1k\n")


def test_missing_file_rejected():
    with pytest.raises(NetlistError, match="not found"):
        load_subckt_device("no/such/device.lib")


def test_several_subckts_need_a_choice():
    text = (DATA / "user_rram.lib").read_text() + ".subckt other a b\nr1 a b 1k\n.ends\n"
    with pytest.raises(NetlistError, match="choose one"):
        load_subckt_device(text)
    with pytest.warns(DeviceModelWarning, match="no conductance parameter"):
        chosen = load_subckt_device(text, subckt="other")
    assert chosen.subckt_name == "other"


def test_unknown_instance_parameter():
    with pytest.raises(ValueError, match="unknown parameter"):
        load_subckt_device(DATA / "user_rram.lib", width=3.0)


def test_per_device_parameters_in_netlist():
    v0 = np.array([[0.2, 0.3], [0.4, 0.5]])
    device = load_subckt_device(DATA / "user_rram.lib", v0=v0)
    spec = CrossbarSpec(np.array([[1e-4, 2e-4], [5e-5, 1e-5]]), device=device)
    text = format_crossbar_netlist(spec, [[0.1, 0.2]]).text
    assert "xd_r1_c0 " in text
    line = next(ln for ln in text.splitlines() if ln.startswith("xd_r1_c0 "))
    assert "r=2e+04" in line
    assert "v0=4e-01" in line


def test_exact_engine_refuses_user_subckt():
    spec = CrossbarSpec(np.full((2, 2), 1e-4), device=get_device(str(DATA / "user_rram.lib")))
    with pytest.raises(NetlistError, match="ngspice engine"):
        solve_exact(spec, [[0.1, 0.1]])


@pytest.mark.ngspice
def test_user_device_in_ngspice(ngspice_runner):
    # One device between a 0.4 V driver and ground: I = g0·v0·sinh((V − 10 Ω·I)/v0), solved by brentq.
    g, v = 2e-4, 0.4
    spec = CrossbarSpec(np.array([[g]]), device=load_subckt_device(DATA / "user_rram.lib"))
    result = solve(spec, [[v]], engine="ngspice", runner=ngspice_runner)
    g0, v0 = g, 0.3
    expected = brentq(lambda i: i - g0 * v0 * np.sinh((v - 10 * i) / v0), 0, 1)
    assert result.currents[0, 0] == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(sum(result.power_breakdown.values()), result.power, rtol=1e-12)


def test_device_file_with_midline_star_rejected(tmp_path):
    path = tmp_path / "star.lib"
    path.write_text(".subckt star p n r=1e4\nr1 p n {r} * series resistor\n.ends\n")
    with pytest.raises(NetlistError, match="midline-star"):
        load_subckt_device(path)


def test_device_file_with_ltspice_if_rejected(tmp_path):
    path = tmp_path / "if.lib"
    path.write_text(".subckt cond p n r=1e4\nb1 p n i=if(v(p,n)>0, 1e-4, 0)\n.ends\n")
    with pytest.raises(NetlistError, match="ternary"):
        load_subckt_device(path)


def test_device_file_with_milli_ohm_warns(tmp_path):
    path = tmp_path / "milli.lib"
    path.write_text(".subckt milli p n r=1e4\nr1 p n 1M\n.ends\n")
    with pytest.warns(DeviceModelWarning, match="milli"):
        load_subckt_device(path)


def test_device_file_with_control_block_rejected(tmp_path):
    path = tmp_path / "ctl.lib"
    path.write_text(".subckt ctl p n r=1e4\nr1 p n {r}\n.ends\n.control\nshell ls\n.endc\n")
    with pytest.raises(UnsafeNetlistError, match="--allow-unsafe"):
        load_subckt_device(path)


def test_per_device_parameter_wrong_shape():
    device = load_subckt_device(DATA / "user_rram.lib", v0=np.full((3, 2), 0.3))
    with pytest.raises(ValueError, match=r"parameter 'v0' has shape \(3, 2\), but the crossbar is \(2, 2\)"):
        CrossbarSpec(np.full((2, 2), 1e-4), device=device)


# --- choosing a device by name or by file path


def test_device_file_with_any_suffix(tmp_path, monkeypatch):
    (tmp_path / "three.sub").write_text((DATA / "user_rram.lib").read_text())
    monkeypatch.chdir(tmp_path)
    device = get_device("three.sub")
    assert device.subckt_name == "user_rram"
    assert device.source_path == Path("three.sub")


def test_device_file_without_suffix(tmp_path, monkeypatch):
    (tmp_path / "rram_model").write_text((DATA / "user_rram.lib").read_text())
    monkeypatch.chdir(tmp_path)
    assert get_device("rram_model").subckt_name == "user_rram"


def test_builtin_name_wins_over_file(tmp_path, monkeypatch):
    (tmp_path / "linear").write_text((DATA / "user_rram.lib").read_text())
    monkeypatch.chdir(tmp_path)
    assert get_device("linear").is_builtin
    assert get_device("./linear").subckt_name == "user_rram"


def test_path_object_with_builtin_name_is_file(tmp_path):
    path = tmp_path / "sinh"
    path.write_text((DATA / "user_rram.lib").read_text())
    assert get_device(path).subckt_name == "user_rram"


def test_unknown_device_names_builtins_and_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as raised:
        get_device("three.sub")
    message = str(raised.value)
    assert message.startswith("unknown device 'three.sub'")
    assert "linear, poole_frenkel, power_law, sinh" in message
    assert f"no file {(tmp_path / 'three.sub').resolve()} exists" in message


def test_unknown_device_path_resolved(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(ValueError) as raised:
        get_device("../models/x.lib")
    assert f"no file {(tmp_path / 'models' / 'x.lib').resolve()} exists" in str(raised.value)


def test_folder_is_not_a_device(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is a folder, not a file"):
        get_device("models")


def test_generate_with_device_file_in_folder(tmp_path, monkeypatch, capsys):
    from spicecross.cli.main import main

    (tmp_path / "three.sub").write_text((DATA / "user_rram.lib").read_text())
    monkeypatch.chdir(tmp_path)
    assert main(["netlist", "generate", "--device", "three.sub", "--rows", "2", "--cols", "2",
                 "-o", "out.cir"]) == 0
    capsys.readouterr()
    text = (tmp_path / "out.cir").read_text()
    assert ".subckt user_rram" in text
    assert "xd_r0_c0 " in text
