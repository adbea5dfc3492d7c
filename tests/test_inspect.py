"""Tests of netlist inspection (spicecross.netlist.inspect)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from spicecross.netlist.inspect import inspect_netlist

DATA = Path(__file__).parent / "data" / "netlists"

HEADER = {"rows": 3, "cols": 4, "r_word_ohm": 1.0, "r_bit_ohm": 1.0, "r_source_ohm": 10.0,
          "r_sense_ohm": 5.0, "device": "linear", "n_vectors": 2}


def _crossbar_text(rows: int, cols: int, *, header: dict | None = None) -> str:
    """Return a crossbar netlist laid out like the ones spicecross writes.

    Word line i runs from driver node in_r{i} through wl_r{i}_c{j}; bit line j
    runs down bl_r{i}_c{j} to a 0 V sense source; device (i, j) joins
    wl_r{i}_c{j} to bl_r{i}_c{j}. Each driver is a B source whose voltage is a
    PWL of the swept source vsweep, written over a continuation line.
    """
    lines = [f"crossbar {rows}x{cols} under test"]
    if header is not None:
        lines.append("* spicecross-crossbar: " + json.dumps(header, sort_keys=True))
    lines += [".subckt cell top bot g=1e-4", "b1 top bot i=g*v(top,bot)", ".ends cell",
              "vsweep sweep 0 0"]
    for i in range(rows):
        lines += [f"bdrv_r{i} in_r{i} 0 v=pwl(v(sweep),", "+ 0,0.1,1,0.2)",
                  f"rsrc_r{i} in_r{i} wl_r{i}_c0 10"]
        lines += [f"rw_r{i}_c{j} wl_r{i}_c{j} wl_r{i}_c{j + 1} 1" for j in range(cols - 1)]
    for j in range(cols):
        lines += [f"rb_r{i}_c{j} bl_r{i}_c{j} bl_r{i + 1}_c{j} 1" for i in range(rows - 1)]
        lines += [f"rsns_c{j} bl_r{rows - 1}_c{j} vg_c{j} 5", f"vsns_c{j} vg_c{j} 0 0"]
    lines += [f"xd_r{i}_c{j} wl_r{i}_c{j} bl_r{i}_c{j} cell g=1e-05"
              for i in range(rows) for j in range(cols)]
    lines += [".options reltol=1e-9", ".dc vsweep 0 1 1", ".end"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def big_crossbar():
    """Inspect a 128×128 crossbar netlist once and return the report.

    Its speed is measured by benchmarks/bench_inspect.py, not here.
    """
    text = _crossbar_text(128, 128, header={**HEADER, "rows": 128, "cols": 128})
    return inspect_netlist(text)


# --- contents


def test_element_counts():
    report = inspect_netlist(_crossbar_text(3, 4, header=HEADER))
    assert report.element_counts == {"R": 24, "X": 12, "V": 5, "B": 3}


def test_expanded_element_counts():
    report = inspect_netlist(_crossbar_text(3, 4, header=HEADER))
    assert report.expanded_element_counts == {"R": 24, "B": 15, "V": 5}


def test_node_count_and_list():
    report = inspect_netlist(_crossbar_text(3, 4))
    assert report.node_count == 2 + 3 + 2 * 12 + 4
    assert report.nodes[:4] == ["0", "bl_r0_c0", "bl_r0_c1", "bl_r0_c2"]


def test_node_list_omitted_above_limit():
    report = inspect_netlist(_crossbar_text(3, 4), node_list_limit=10)
    assert report.nodes is None


def test_subckts_and_instances():
    report = inspect_netlist(_crossbar_text(3, 4))
    assert report.subckts == [{"name": "cell", "pins": ["top", "bot"],
                               "params": {"g": "1e-4"}, "line": 2, "elements": 1,
                               "instances": 12}]
    assert report.subckt_instances == {"cell": 12}


def test_params_includes_analyses():
    text = "t\n.param rw=1\n.include cell.inc\nV1 a 0 1\nR1 a 0 {rw}\n.op\n.tran 1n 1u\n"
    report = inspect_netlist(text)
    assert report.params == {"rw": "1"}
    assert report.includes == [{"kind": "include", "path": "cell.inc", "section": None,
                                "line": 3}]
    assert report.analyses == [{"kind": "op", "args": [], "line": 6},
                               {"kind": "tran", "args": ["1n", "1u"], "line": 7}]


def test_options_reported():
    report = inspect_netlist(_crossbar_text(2, 2))
    assert report.options == {"reltol": "1e-9"}


def test_clean_crossbar_has_no_findings():
    report = inspect_netlist(_crossbar_text(3, 4, header=HEADER))
    assert report.findings == []


def test_graph_nodes_and_edges():
    graph = inspect_netlist(_crossbar_text(3, 4)).graph
    assert graph.number_of_nodes() == 33
    assert graph.number_of_edges() == 44
    assert graph.has_edge("wl_r0_c0", "bl_r0_c0", key="xd_r0_c0")


@pytest.mark.ngspice
def test_test_crossbar_runs_in_ngspice(tmp_path):
    if shutil.which("ngspice") is None:
        pytest.skip("ngspice is not installed")
    text = _crossbar_text(3, 4).replace(
        ".end\n", ".control\nrun\nprint i(vsns_c0)\n.endc\n.end\n")
    path = tmp_path / "xbar.cir"
    path.write_text(text)
    done = subprocess.run(["ngspice", "-b", str(path)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert "i(vsns_c0)" in done.stdout
    assert "error" not in done.stdout.lower()


# --- crossbar geometry


def test_geometry_from_header():
    report = inspect_netlist(_crossbar_text(3, 4, header=HEADER))
    assert report.geometry == HEADER


def test_geometry_none_without_header():
    report = inspect_netlist(_crossbar_text(3, 4))
    assert report.geometry is None


def test_geometry_inferred_from_nodes():
    report = inspect_netlist(_crossbar_text(3, 4))
    assert report.inferred_geometry == {"rows": 3, "cols": 4}


def test_no_inferred_geometry_for_other_circuits():
    report = inspect_netlist(DATA / "zero_wire.cir")
    assert report.inferred_geometry is None


def test_invalid_header_json():
    text = "t\n* spicecross-crossbar: {rows: 3\nV1 a 0 1\nR1 a 0 1k\n"
    report = inspect_netlist(text)
    assert report.geometry is None
    assert [(finding.code, finding.severity, finding.line) for finding in report.findings] == [
        ("crossbar-header", "error", 2)]


def test_header_missing_keys():
    text = 't\n* spicecross-crossbar: {"rows": 3}\nV1 a 0 1\nR1 a 0 1k\n'
    report = inspect_netlist(text)
    assert report.geometry == {"rows": 3}
    assert "cols, r_word_ohm" in report.findings[0].message


# --- lint and safety in the report


def test_lint_findings_included():
    report = inspect_netlist(DATA / "midline_star.cir")
    assert [(finding.code, finding.line, finding.column) for finding in report.findings] == [
        ("midline-star", 4, 16)]


def test_unsafe_netlist_still_reported(tmp_path):
    text = "t\nV1 a 0 1\nR1 a 0 1k\n.control\nshell ls\n.endc\n.end\n"
    report = inspect_netlist(text, netlist_dir=tmp_path)
    assert not report.safe
    assert report.element_counts == {"R": 1, "V": 1}
    assert [(finding.code, finding.severity, finding.line) for finding in report.findings] == [
        ("control-block", "error", 4), ("shell-command", "error", 5)]


def test_allow_unsafe_downgrades_findings(tmp_path):
    text = "t\nV1 a 0 1\nR1 a 0 1k\n.control\nrun\n.endc\n.end\n"
    report = inspect_netlist(text, netlist_dir=tmp_path, allow_unsafe=True)
    assert [(finding.code, finding.severity) for finding in report.findings] == [
        ("control-block", "warning")]


def test_included_subckt_used(tmp_path):
    (tmp_path / "cell.inc").write_text(".subckt cell p n\nR1 p n 1k\nR2 p n 2k\n.ends\n")
    path = tmp_path / "main.cir"
    path.write_text("t\n.include cell.inc\nV1 a 0 1\nX1 a 0 cell\nX2 a 0 cell\n.op\n.end\n")
    report = inspect_netlist(path)
    assert report.findings == []
    assert report.expanded_element_counts == {"R": 4, "V": 1}


def test_unsafe_include_finding_points_at_include_card(tmp_path):
    (tmp_path / "a.inc").write_text("R2 a 0 1k\n.control\nrun\n.endc\n")
    path = tmp_path / "main.cir"
    path.write_text("t\nV1 a 0 1\nR1 a 0 1k\n.include a.inc\n.end\n")
    finding = inspect_netlist(path).findings[0]
    assert (finding.code, finding.line) == ("control-block", 4)
    assert "included file" in finding.message


def test_outside_include_not_read(tmp_path):
    (tmp_path / "cell.inc").write_text(".subckt cell p n\nR1 p n 1k\n.ends\n")
    folder = tmp_path / "work"
    folder.mkdir()
    path = folder / "main.cir"
    path.write_text("t\n.include ../cell.inc\nV1 a 0 1\nX1 a 0 cell\n.end\n")
    codes = [finding.code for finding in inspect_netlist(path).findings]
    assert codes == ["include-outside", "unknown-subckt"]


def test_allowed_dirs_include_read(tmp_path):
    models = tmp_path / "device_models"
    models.mkdir()
    (models / "cell.lib").write_text(".subckt cell p n\nR1 p n 1k\n.ends\n")
    folder = tmp_path / "work"
    folder.mkdir()
    path = folder / "main.cir"
    path.write_text(f"t\n.include {models / 'cell.lib'}\nV1 a 0 1\nX1 a 0 cell\n.end\n")
    report = inspect_netlist(path, allowed_dirs=[models])
    assert report.findings == []


# --- sources and output formats


def test_text_source_label():
    report = inspect_netlist(_crossbar_text(2, 2))
    assert report.source == "<netlist text>"


def test_path_string_source():
    report = inspect_netlist(str(DATA / "zero_wire.cir"))
    assert report.title.startswith("Word line with ideal")


def test_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.cir"):
        inspect_netlist(str(tmp_path / "nope.cir"))


def test_to_dict_keys_stable():
    data = inspect_netlist(_crossbar_text(2, 2, header=HEADER)).to_dict()
    assert list(data) == ["source", "title", "line_count", "element_counts",
                          "expanded_element_counts", "node_count", "expanded_node_count",
                          "nodes", "subckts", "subckt_instances", "params", "includes",
                          "analyses", "options", "geometry", "inferred_geometry", "safety",
                          "findings"]


def test_to_dict_is_json():
    report = inspect_netlist(DATA / "ltspice_functions.cir")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["safety"] == {"safe": True, "issues": []}
    assert [finding["code"] for finding in data["findings"]] == [
        "unsupported-function", "unsupported-function", "unsupported-function",
        "unsupported-constant", "unsupported-constant"]


def test_format_text_summary():
    text = inspect_netlist(_crossbar_text(3, 4, header=HEADER)).format_text()
    assert "elements: 44 (R 24, X 12, V 5, B 3)" in text
    assert "crossbar: 3x4, r_word_ohm=1.0" in text
    assert "cell (top bot), line 3, 1 element(s), 12 instance(s)" in text
    assert "findings: 0 error(s), 0 warning(s)" in text


def test_format_text_lists_findings():
    text = inspect_netlist(DATA / "zero_wire.cir").format_text()
    assert "line 3:12: warning [zero-resistance]" in text


# --- 128×128 crossbar


def test_big_crossbar_counts(big_crossbar):
    report = big_crossbar
    assert report.line_count == 49545
    assert report.element_counts == {"R": 32768, "X": 16384, "V": 129, "B": 128}
    assert report.expanded_element_counts == {"R": 32768, "B": 16512, "V": 129}
    assert report.node_count == 2 + 128 + 2 * 128 * 128 + 128


def test_big_crossbar_geometry(big_crossbar):
    report = big_crossbar
    assert (report.geometry["rows"], report.geometry["cols"]) == (128, 128)
    assert report.inferred_geometry == {"rows": 128, "cols": 128}


def test_big_crossbar_clean(big_crossbar):
    report = big_crossbar
    assert report.findings == []
    assert report.nodes is None
