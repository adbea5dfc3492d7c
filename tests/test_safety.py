"""Tests of the safety check for untrusted netlists (spicecross.netlist.safety)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from spicecross.errors import NetlistError, UnsafeNetlistError
from spicecross.netlist.parse import parse_netlist
from spicecross.netlist.safety import check_safety, scan_netlist

SAFE_BODY = "V1 a 0 1\nR1 a 0 1k\n.op\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _netlist(folder: Path, text: str, name: str = "main.cir"):
    path = _write(folder / name, text)
    return parse_netlist(text, path=path)


def _codes(issues) -> list[str]:
    return [issue.code for issue in issues]


def _issues(folder: Path, text: str, **kwargs):
    netlist = _netlist(folder, text)
    return list(scan_netlist(netlist, netlist_dir=folder, **kwargs).issues)


# --- cards that run commands


def test_safe_netlist_passes(tmp_path):
    netlist = _netlist(tmp_path, "t\n" + SAFE_BODY + ".end\n")
    assert check_safety(netlist, netlist_dir=tmp_path) == []


def test_control_block_rejected(tmp_path):
    netlist = _netlist(tmp_path, "t\n" + SAFE_BODY + ".control\nrun\n.endc\n.end\n")
    with pytest.raises(UnsafeNetlistError) as caught:
        check_safety(netlist, netlist_dir=tmp_path)
    message = str(caught.value)
    assert "main.cir:5: .control block (lines 5-7)" in message
    assert "--allow-unsafe" in message
    assert "allow_unsafe=True" in message


def test_unsafe_error_is_netlist_error(tmp_path):
    netlist = _netlist(tmp_path, "t\n.control\n.endc\n")
    with pytest.raises(NetlistError):
        check_safety(netlist, netlist_dir=tmp_path)


def test_shell_in_control_reported(tmp_path):
    issues = _issues(tmp_path, "t\n" + SAFE_BODY + ".control\nshell rm -rf x\n.endc\n")
    assert [(issue.code, issue.line) for issue in issues] == [
        ("control-block", 5), ("shell-command", 6)]


def test_shell_card_outside_control(tmp_path):
    issues = _issues(tmp_path, "t\nshell touch x\n" + SAFE_BODY)
    assert [(issue.code, issue.line) for issue in issues] == [("shell-command", 2)]


def test_hash_command_rejected(tmp_path):
    issues = _issues(tmp_path, "t\n*# shell touch x\n" + SAFE_BODY)
    assert [(issue.code, issue.line) for issue in issues] == [("hash-command", 2)]
    assert "'shell'" in issues[0].message


def test_ng_script_rejected(tmp_path):
    issues = _issues(tmp_path, "*ng_script\necho hi\n")
    assert _codes(issues) == ["script-file"]


def test_control_after_end_rejected(tmp_path):
    issues = _issues(tmp_path, "t\n" + SAFE_BODY + ".end\n.control\necho late\n.endc\n")
    assert [(issue.code, issue.line) for issue in issues] == [("control-block", 6)]


@pytest.mark.ngspice
def test_ngspice_runs_hash_lines(tmp_path):
    # The reason '*#' lines are rejected: ngspice 39 runs them, they are not comments.
    if shutil.which("ngspice") is None:
        pytest.skip("ngspice is not installed")
    path = _write(tmp_path / "hash.cir", "t\n*# echo hash-line-ran\n" + SAFE_BODY + ".end\n")
    done = subprocess.run(["ngspice", "-b", str(path)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert "hash-line-ran" in done.stdout + done.stderr


def test_allow_unsafe_returns_issues(tmp_path):
    netlist = _netlist(tmp_path, "t\n.control\nshell ls\n.endc\n")
    issues = check_safety(netlist, netlist_dir=tmp_path, allow_unsafe=True)
    assert _codes(issues) == ["control-block", "shell-command"]


def test_text_without_path_labelled(tmp_path):
    netlist = parse_netlist("t\n.control\n.endc\n")
    with pytest.raises(UnsafeNetlistError, match="<netlist text>:2: .control"):
        check_safety(netlist, netlist_dir=tmp_path)


# --- included files


def test_include_inside_folder_allowed(tmp_path):
    _write(tmp_path / "models" / "cell.inc", ".subckt cell p n\nR1 p n 1k\n.ends\n")
    netlist = _netlist(tmp_path, "t\n.include models/cell.inc\n" + SAFE_BODY)
    assert check_safety(netlist, netlist_dir=tmp_path) == []


def test_include_outside_rejected(tmp_path):
    _write(tmp_path / "other" / "x.inc", "R9 a 0 1k\n")
    folder = tmp_path / "work"
    netlist = _netlist(folder, "t\n.include ../other/x.inc\n" + SAFE_BODY)
    with pytest.raises(UnsafeNetlistError) as caught:
        check_safety(netlist, netlist_dir=folder)
    message = str(caught.value)
    assert "main.cir:2: '.include ../other/x.inc' reads" in message
    assert str(tmp_path / "other" / "x.inc") in message


def test_absolute_include_outside_rejected(tmp_path):
    outside = _write(tmp_path / "other" / "x.inc", "R9 a 0 1k\n")
    folder = tmp_path / "work"
    issues = _issues(folder, f"t\n.include {outside}\n" + SAFE_BODY)
    assert _codes(issues) == ["include-outside"]


def test_lib_outside_rejected(tmp_path):
    _write(tmp_path / "other" / "x.lib", ".lib fast\n.endl\n")
    folder = tmp_path / "work"
    issues = _issues(folder, "t\n.lib ../other/x.lib fast\n" + SAFE_BODY)
    assert _codes(issues) == ["include-outside"]


def test_allowed_dir_include_passes(tmp_path):
    models = tmp_path / "device_models"
    _write(models / "linear.lib", ".subckt lin p n\nR1 p n 1k\n.ends\n")
    folder = tmp_path / "work"
    netlist = _netlist(folder, f"t\n.include {models / 'linear.lib'}\n" + SAFE_BODY)
    assert check_safety(netlist, netlist_dir=folder, allowed_dirs=[models]) == []


def test_symlink_escape_rejected(tmp_path):
    outside = _write(tmp_path / "secret" / "data.inc", "R9 a 0 1k\n")
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "innocent.inc").symlink_to(outside)
    issues = _issues(folder, "t\n.include innocent.inc\n" + SAFE_BODY)
    assert _codes(issues) == ["include-outside"]
    assert str(outside) in issues[0].message


def test_symlinked_folder_escape_rejected(tmp_path):
    _write(tmp_path / "secret" / "data.inc", "R9 a 0 1k\n")
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "lib").symlink_to(tmp_path / "secret", target_is_directory=True)
    issues = _issues(folder, "t\n.include lib/data.inc\n" + SAFE_BODY)
    assert _codes(issues) == ["include-outside"]


def test_missing_include_rejected(tmp_path):
    issues = _issues(tmp_path, "t\n.include nowhere.inc\n" + SAFE_BODY)
    assert _codes(issues) == ["include-missing"]


def test_nested_allowed_include_checked(tmp_path):
    _write(tmp_path / "inc" / "a.inc", ".include b.inc\n")
    _write(tmp_path / "inc" / "b.inc", "R2 a 0 1k\n.control\nshell ls\n.endc\n")
    issues = _issues(tmp_path, "t\n.include inc/a.inc\n" + SAFE_BODY)
    assert [(issue.code, issue.line, Path(issue.path).name, issue.include_line)
            for issue in issues] == [("control-block", 2, "b.inc", 2),
                                     ("shell-command", 3, "b.inc", 2)]


def test_nested_include_resolves_from_its_folder(tmp_path):
    # ngspice 39 resolves inc/a.inc's ".include b.inc" as inc/b.inc.
    _write(tmp_path / "inc" / "a.inc", ".include b.inc\n")
    _write(tmp_path / "inc" / "b.inc", "R2 a 0 1k\n")
    assert _issues(tmp_path, "t\n.include inc/a.inc\n" + SAFE_BODY) == []


def test_nested_include_escape_rejected(tmp_path):
    _write(tmp_path / "secret.inc", "R9 a 0 1k\n")
    folder = tmp_path / "work"
    _write(folder / "a.inc", ".include ../secret.inc\n")
    issues = _issues(folder, "t\n.include a.inc\n" + SAFE_BODY)
    assert [(issue.code, Path(issue.path).name) for issue in issues] == [
        ("include-outside", "a.inc")]


def test_hash_line_in_include_rejected(tmp_path):
    _write(tmp_path / "a.inc", "*# echo hi\n")
    issues = _issues(tmp_path, "t\n.include a.inc\n" + SAFE_BODY)
    assert _codes(issues) == ["hash-command"]


def test_include_loop_terminates(tmp_path):
    _write(tmp_path / "a.inc", ".include b.inc\n")
    _write(tmp_path / "b.inc", ".include a.inc\n.include main.cir\n")
    assert _issues(tmp_path, "t\n.include a.inc\n" + SAFE_BODY) == []


def test_unparsable_include_rejected(tmp_path):
    _write(tmp_path / "bad.inc", ".subckt open p n\n")
    issues = _issues(tmp_path, "t\n.include bad.inc\n" + SAFE_BODY)
    assert _codes(issues) == ["include-unreadable"]
    assert ".subckt open has no matching .ends" in issues[0].message


def test_model_file_param_outside_rejected(tmp_path):
    text = "t\n.model src filesource (file=\"/etc/hostname\")\n" + SAFE_BODY
    issues = _issues(tmp_path, text)
    assert [(issue.code, issue.line) for issue in issues] == [("file-outside", 2)]


def test_model_file_param_inside_allowed(tmp_path):
    _write(tmp_path / "wave.txt", "0 0\n")
    text = "t\n.model src filesource (file=\"wave.txt\")\n" + SAFE_BODY
    assert _issues(tmp_path, text) == []


def test_scan_reads_allowed_includes(tmp_path):
    _write(tmp_path / "cell.inc", ".subckt cell p n\nR1 p n 1k\n.ends\n")
    netlist = _netlist(tmp_path, "t\n.include cell.inc\n" + SAFE_BODY)
    scan = scan_netlist(netlist, netlist_dir=tmp_path)
    assert [sorted(item.netlist.subckts) for item in scan.included] == [["cell"]]


def test_scan_skips_outside_includes(tmp_path):
    _write(tmp_path / "cell.inc", ".subckt cell p n\nR1 p n 1k\n.ends\n")
    folder = tmp_path / "work"
    netlist = _netlist(folder, "t\n.include ../cell.inc\n" + SAFE_BODY)
    scan = scan_netlist(netlist, netlist_dir=folder)
    assert scan.included == ()


def test_self_include_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = Path("work")
    path = _write(folder / "main.cir", "t\n.include main.cir\n" + SAFE_BODY)
    netlist = parse_netlist(path.read_text(), path=path)
    scan = scan_netlist(netlist, netlist_dir=folder)
    assert scan.issues == ()
    assert scan.included == ()
