import json
import subprocess
import sys

import numpy as np
import pytest

from spicecross.cli.main import main

SCRIPT = [sys.executable, "-m", "spicecross.cli.main"]


def run_cli(*args, cwd=None):
    return subprocess.run(SCRIPT + list(args), capture_output=True, text=True, cwd=cwd, timeout=300)


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.startswith("spicecross ")


def test_generate_random_and_inspect(tmp_path, capsys):
    cir = tmp_path / "x.cir"
    assert main(["netlist", "generate", "--rows", "4", "--cols", "3", "--device", "sinh", "--param", "v0=0.2",
                 "--r-word", "2", "--r-bit", "2", "-o", str(cir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 4
    assert cir.with_suffix(".json").exists()
    assert main(["netlist", "inspect", str(cir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["geometry"]["rows"] == 4
    assert report["geometry"]["cols"] == 3


def test_generate_from_files(tmp_path, capsys):
    g = np.full((2, 3), 1e-4)
    np.save(tmp_path / "g.npy", g)
    np.savetxt(tmp_path / "v.csv", [[0.1, 0.2], [0.3, 0.4]], delimiter=",")
    cir = tmp_path / "f.cir"
    assert main(["netlist", "generate", "-g", str(tmp_path / "g.npy"), "-v", str(tmp_path / "v.csv"),
                 "--device", "linear", "--r-word", "0", "--r-bit", "0", "-o", str(cir)]) == 0
    capsys.readouterr()
    assert main(["solve", str(cir), "--engine", "exact", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(data["vectors"][1]["currents_a"], [0.7e-4] * 3, rtol=1e-12)


@pytest.mark.ngspice
def test_solve_ngspice_json(tmp_path):
    cir = tmp_path / "s.cir"
    assert run_cli("netlist", "generate", "--rows", "3", "--cols", "2", "-o", str(cir)).returncode == 0
    spice = json.loads(run_cli("solve", str(cir), "--json").stdout)
    exact = json.loads(run_cli("solve", str(cir), "--engine", "exact", "--json").stdout)
    assert spice["engine"] == "ngspice"
    assert spice["info"]["ngspice_version"].startswith("ngspice-")
    for a, b in zip(spice["vectors"], exact["vectors"]):
        np.testing.assert_allclose(a["currents_a"], b["currents_a"], rtol=1e-9, atol=1e-15)
        assert "elapsed_s" in spice


@pytest.mark.parametrize("args, message", [
    (["--device", "nope"], "unknown device 'nope'"),
    (["--param", "n=1.2"], "n=1.2"),
    (["--rows", "0"], "--rows 0"),
    (["--r-word", "-1"], "negative resistance"),
    (["--g-off", "5e-4", "--g-on", "1e-4", "--weights", "W"], "W not found"),
])
def test_generate_bad_input_leaves_no_file(tmp_path, args, message):
    cir = tmp_path / "bad.cir"
    out = run_cli("netlist", "generate", "-o", str(cir), *args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert not cir.exists()
    assert not cir.with_suffix(".json").exists()


def test_bad_conductance_file(tmp_path):
    np.save(tmp_path / "g.npy", np.array([[1e-4, np.nan]]))
    out = run_cli("netlist", "generate", "-g", str(tmp_path / "g.npy"), "-o", str(tmp_path / "x.cir"))
    assert out.returncode == 2
    assert "conductances[0, 1] = nan" in out.stderr


def test_inspect_missing_file(tmp_path):
    out = run_cli("netlist", "inspect", str(tmp_path / "none.cir"))
    assert out.returncode == 2
    assert "not found" in out.stderr


def test_solve_rejects_control_block(tmp_path):
    cir = tmp_path / "u.cir"
    assert run_cli("netlist", "generate", "--rows", "2", "--cols", "2", "-o", str(cir)).returncode == 0
    cir.write_text(cir.read_text().replace(".end\n", ".control\nshell touch pwned\n.endc\n.end\n"))
    out = run_cli("solve", str(cir))
    assert out.returncode == 2
    assert "--allow-unsafe" in out.stderr
    assert not (tmp_path / "pwned").exists()


def test_import_is_light():
    code = ("import sys, spicecross, spicecross.crossbar, spicecross.netlist.writer; "
            "print(sorted(m for m in ('torch', 'PySpice', 'matplotlib', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_generate_splits_large_array_into_tiles(tmp_path, capsys):
    g = np.random.default_rng(0).uniform(1e-5, 1e-4, (5, 6))
    v = np.random.default_rng(1).uniform(0, 0.5, (2, 5))
    np.save(tmp_path / "g.npy", g)
    np.save(tmp_path / "v.npy", v)
    out = tmp_path / "t.cir"
    assert main(["netlist", "generate", "-g", str(tmp_path / "g.npy"), "-v", str(tmp_path / "v.npy"),
                 "--device", "linear", "--r-word", "0", "--r-bit", "0", "--tile-rows", "2", "--tile-cols", "4",
                 "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tiles"] == 6
    index = json.loads((tmp_path / "t.tiles.json").read_text())
    total = np.zeros((2, 6))
    for tile in index["tiles"]:
        assert main(["solve", str(tmp_path / tile["netlist"]), "--engine", "exact", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        currents = np.array([vec["currents_a"] for vec in data["vectors"]])
        total[:, tile["cols"][0]:tile["cols"][1]] += currents
    np.testing.assert_allclose(total, v @ g, rtol=1e-12)


def _generate(tmp_path, name="e.cir"):
    cir = tmp_path / name
    assert run_cli("netlist", "generate", "--rows", "2", "--cols", "2", "--device", "linear",
                   "--r-word", "1", "--r-bit", "1", "--vectors", "1", "-o", str(cir)).returncode == 0
    return cir


@pytest.mark.ngspice
def test_edited_netlist_power_from_run(tmp_path):
    cir = _generate(tmp_path)
    text = cir.read_text()
    # Double the first driver's voltage, the way a user might edit the file by hand.
    line = next(ln for ln in text.splitlines() if ln.startswith("bdrv_r0_w"))
    x, v = line.split("pwl(v(sweep),")[1].split(",")[:2]
    edited = line.replace(f"{x},{v},", f"{x},{float(v) * 2!r},", 1)
    cir.write_text(text.replace(line, edited))
    exact = run_cli("solve", str(cir), "--engine", "exact")
    assert exact.returncode == 2
    assert "edited after it was generated" in exact.stderr
    spice = run_cli("solve", str(cir), "--json")
    assert spice.returncode == 0
    data = json.loads(spice.stdout)
    assert data["vectors"][0]["power_breakdown_w"] == {}
    warning_lines = [ln for ln in spice.stderr.splitlines() if "edited" in ln]
    assert len(warning_lines) == 1
    assert warning_lines[0].startswith("spicecross: warning: ")
    assert "UserWarning" not in spice.stderr


@pytest.mark.ngspice
def test_solve_without_sidecar(tmp_path):
    cir = _generate(tmp_path)
    with_sidecar = json.loads(run_cli("solve", str(cir), "--json").stdout)
    cir.with_suffix(".json").unlink()
    without = json.loads(run_cli("solve", str(cir), "--json").stdout)
    np.testing.assert_allclose(without["vectors"][0]["currents_a"], with_sidecar["vectors"][0]["currents_a"],
                               rtol=1e-12)
    assert without["vectors"][0]["power_w"] == pytest.approx(with_sidecar["vectors"][0]["power_w"], rel=1e-12)


def test_solve_foreign_netlist_explains(tmp_path):
    cir = tmp_path / "foreign.cir"
    cir.write_text("foreign\nv1 a 0 1\nr1 a 0 1k\n.op\n.end\n")
    out = run_cli("solve", str(cir))
    assert out.returncode == 2
    assert "not a crossbar netlist written by spicecross" in out.stderr


@pytest.mark.parametrize("content, message", [
    ("1,2\n3\n", "line 2 has 1 value but line 1, the first line of numbers, has 2 values"),
    ("a,b\n1,2\n", "line 1, column 1 is 'a', which is not a number"),
    ("1,2\n3,abc\n", "line 2, column 2 is 'abc', which is not a number. Replace it with a number."),
    ("", "it contains no numbers"),
])
def test_bad_csv_names_file(tmp_path, content, message):
    (tmp_path / "g.csv").write_text(content)
    out = run_cli("netlist", "generate", "-g", str(tmp_path / "g.csv"), "-o", str(tmp_path / "x.cir"))
    assert out.returncode == 2
    assert "g.csv is not a valid CSV matrix because" in out.stderr
    assert message in out.stderr
    assert "usecols" not in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_csv_voltages_names_line(tmp_path, capsys):
    (tmp_path / "v.csv").write_text("# inputs\n0.1,0.2\n0.3\n")
    assert main(["netlist", "generate", "--rows", "2", "--cols", "2", "-v", str(tmp_path / "v.csv"),
                 "-o", str(tmp_path / "x.cir")]) == 2
    err = capsys.readouterr().err
    assert "v.csv is not a valid CSV matrix because line 3 has 1 value" in err
    assert "line 2, the first line of numbers, has 2 values" in err


def test_bad_csv_param_names_line(tmp_path):
    (tmp_path / "n.csv").write_text("2.5,2.5\n2.5,x\n")
    out = run_cli("netlist", "generate", "--rows", "2", "--cols", "2", "--param", f"n={tmp_path / 'n.csv'}",
                  "-o", str(tmp_path / "x.cir"))
    assert out.returncode == 2
    assert "n.csv is not a valid CSV matrix because line 2, column 2 is 'x'" in out.stderr
    assert "_parse_param" not in out.stderr


def test_output_is_directory_no_traceback(tmp_path):
    (tmp_path / "q.json").mkdir()
    out = run_cli("netlist", "generate", "--rows", "2", "--cols", "2", "-o", str(tmp_path / "q.cir"))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "q.cir").exists()


def test_solve_tile_index_adds_columns(tmp_path, capsys):
    g = np.random.default_rng(2).uniform(1e-5, 1e-4, (5, 4))
    v = np.random.default_rng(3).uniform(0, 0.5, (3, 5))
    np.save(tmp_path / "g.npy", g)
    np.save(tmp_path / "v.npy", v)
    assert main(["netlist", "generate", "-g", str(tmp_path / "g.npy"), "-v", str(tmp_path / "v.npy"),
                 "--device", "linear", "--r-word", "0", "--r-bit", "0", "--tile-rows", "2", "--tile-cols", "2",
                 "-o", str(tmp_path / "t.cir")]) == 0
    capsys.readouterr()
    assert main(["solve", str(tmp_path / "t.tiles.json"), "--engine", "exact", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    currents = np.array([vec["currents_a"] for vec in data["vectors"]])
    np.testing.assert_allclose(currents, v @ g, rtol=1e-12)
    assert data["info"]["tiles"] == 6


def test_closed_output_pipe_is_quiet(tmp_path):
    # As in 'spicecross ... | head': the reader closes the pipe before the output is written.
    process = subprocess.Popen([*SCRIPT, "example"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=tmp_path)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=120) == 141
    assert stderr == ""


def test_inspect_tile_index_names_the_fix(tmp_path, capsys):
    assert main(["netlist", "generate", "--rows", "6", "--cols", "6", "--tile-rows", "3",
                 "--tile-cols", "3", "-o", str(tmp_path / "t.cir")]) == 0
    capsys.readouterr()
    assert main(["netlist", "inspect", str(tmp_path / "t.tiles.json")]) == 2
    assert "is a tile index" in capsys.readouterr().err
