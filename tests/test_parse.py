"""Tests of the netlist reader (spicecross.netlist.parse)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from spicecross.errors import NetlistError
from spicecross.netlist.parse import (
    GROUND_NODES,
    parse_netlist,
    read_subckt_header,
    split_cards,
)

DATA = Path(__file__).parent / "data" / "netlists"


def _read(name: str):
    path = DATA / name
    return parse_netlist(path.read_text(), path=path)


def _elements(netlist) -> dict:
    """Map element names to elements; a top-level element wins over a subcircuit one."""
    elements = {element.name: element for subckt in netlist.subckts.values()
                for element in subckt.elements}
    elements.update((element.name, element) for element in netlist.elements)
    return elements


def _run_ngspice(text: str, tmp_path: Path) -> str:
    """Run ngspice in batch mode on ``text`` and return its stdout and stderr."""
    if shutil.which("ngspice") is None:
        pytest.skip("ngspice is not installed")
    path = tmp_path / "case.cir"
    path.write_text(text)
    done = subprocess.run(["ngspice", "-b", str(path)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    return done.stdout + done.stderr


def _with_print(text: str, *vectors: str) -> str:
    """Add a .control block that runs the analyses and prints ``vectors``."""
    control = ".control\nrun\nprint " + " ".join(vectors) + "\n.endc\n.end"
    return re.sub(r"^\.end\s*$", control, text, flags=re.MULTILINE)


def _printed(output: str, vector: str) -> float:
    match = re.search(re.escape(vector) + r"\s*=\s*(\S+)", output)
    assert match is not None, output
    return float(match.group(1))


# --- lines, comments and continuation


def test_title_is_first_line():
    netlist = parse_netlist("My circuit\nR1 a 0 1k\n")
    assert netlist.title == "My circuit"


def test_element_keeps_line_number():
    netlist = _read("comments.cir")
    lines = {element.name: element.line for element in netlist.elements}
    assert lines == {"r1": 3, "r2": 7, "r3": 8, "r4": 9, "rn$1": 10, "v1": 11}


def test_continuation_joins_lines():
    netlist = _read("comments.cir")
    r1 = _elements(netlist)["r1"]
    assert r1.value == 1000.0
    assert r1.params == {"tc1": "0.001"}


def test_continuation_segments_keep_columns():
    netlist = parse_netlist("t\nR1 a 0\n+   1k\n")
    segments = netlist.cards[0].segments
    assert [(segment.line, segment.column, segment.text) for segment in segments] == [
        (2, 1, "R1 a 0"), (3, 5, "1k")]


def test_end_of_line_comments_removed():
    netlist = _read("comments.cir")
    values = {name: element.value for name, element in _elements(netlist).items()}
    assert values == {"r1": 1e3, "r2": 2e3, "r3": 3e3, "r4": 4e3, "rn$1": 5e3, "v1": 1.0}


def test_dollar_inside_name_kept():
    netlist = _read("comments.cir")
    assert "rn$1" in _elements(netlist)


def test_comment_only_line_is_comment():
    netlist = parse_netlist("t\nR1 a 0 1k\n   ; just a remark\n+ tc1=1m\n")
    assert netlist.elements[0].params == {"tc1": "1m"}
    assert [comment.line for comment in netlist.comments] == [3]


def test_full_line_comments_recorded():
    netlist = _read("comments.cir")
    assert [comment.line for comment in netlist.comments] == [2, 5]


def test_midline_star_stays_a_token():
    netlist = _read("midline_star.cir")
    card = next(card for card in netlist.cards if card.keyword == "v1")
    assert card.text == "V1 r1 0 DC 0.5 * row 1"


def test_semicolon_comment_removed():
    netlist = _read("midline_star.cir")
    card = next(card for card in netlist.cards if card.keyword == "v2")
    assert card.text == "V2 r2 0 DC 0.5"


def test_dollar_in_control_needs_space():
    text = "t\nR1 a 0 1k\n.control\nlet x = $y\necho hi $ remark\n.endc\n.end\n"
    block = parse_netlist(text).controls[0]
    assert [line.command for line in block.lines] == ["let x = $y", "echo hi"]


def test_crlf_line_endings():
    netlist = parse_netlist("t\r\nR1 a 0 1k\r\n.end\r\n")
    assert netlist.elements[0].value == 1000.0


@pytest.mark.ngspice
def test_comment_rules_match_ngspice(tmp_path):
    text = (DATA / "comments.cir").read_text()
    output = _run_ngspice(_with_print(text, "i(v1)"), tmp_path)
    conductance = sum(1 / element.value for element in _read("comments.cir").elements
                      if element.kind == "r" and element.name not in ("r2", "r3"))
    expected = -(conductance + 1 / 5e3)
    assert _printed(output, "i(v1)") == pytest.approx(expected, rel=1e-5)


# --- names and values


def test_names_lower_case():
    netlist = _read("case_fold.cir")
    drive = _elements(netlist)["vdrive"]
    assert drive.nodes == ("row1", "0")
    assert drive.raw_nodes == ("Row1", "0")
    assert drive.raw_name == "Vdrive"


def test_si_suffix_values():
    elements = _elements(_read("si_suffix.cir"))
    assert elements["ra"].value == pytest.approx(1e-3, rel=1e-15)
    assert elements["rb"].value == pytest.approx(1e6, rel=1e-15)
    assert elements["rc"].value == pytest.approx(1e6, rel=1e-15)


def test_si_suffix_value_text_kept():
    elements = _elements(_read("si_suffix.cir"))
    assert [elements[name].value_text for name in ("ra", "rb", "rc")] == ["1M", "1MEG", "1e6"]


@pytest.mark.ngspice
def test_si_suffix_matches_ngspice(tmp_path):
    text = (DATA / "si_suffix.cir").read_text()
    output = _run_ngspice(_with_print(text, "i(vca)", "i(vcb)", "i(vcc)"), tmp_path)
    elements = _elements(_read("si_suffix.cir"))
    for column, resistor in (("vca", "ra"), ("vcb", "rb"), ("vcc", "rc")):
        expected = 0.1 / elements[resistor].value
        assert _printed(output, f"i({column})") == pytest.approx(expected, rel=1e-6)


def test_ground_names():
    assert GROUND_NODES == frozenset({"0", "gnd"})


@pytest.mark.ngspice
@pytest.mark.parametrize(("name", "is_ground"), [
    ("0", True), ("gnd", True), ("GND", True), ("gnd!", False), ("ground", False),
    ("00", False),
])
def test_ground_names_match_ngspice(tmp_path, name, is_ground):
    text = f"ground check\nV1 a {name} DC 1\nR1 a {name} 1k\n.op\n.end\n"
    output = _run_ngspice(_with_print(text, "v(a)"), tmp_path)
    singular = "singular matrix" in output
    assert singular is (not is_ground)
    assert (name.lower() in GROUND_NODES) is is_ground


# --- element types


ELEMENT_CASES = {
    # name: (kind, nodes, value, model, controls)
    "v1": ("v", ("in", "0"), 1.0, None, ()),
    "i1": ("i", ("0", "n1"), 1e-3, None, ()),
    "r1": ("r", ("in", "n1"), 1e4, None, ()),
    "r2": ("r", ("n1", "0"), 5e3, None, ()),
    "c1": ("c", ("n1", "0"), 1e-12, None, ()),
    "l1": ("l", ("n1", "n2"), 1e-6, None, ()),
    "k1": ("k", (), 0.9, None, ("l1", "l2")),
    "e1": ("e", ("e1", "0", "n1", "0"), 2.0, None, ()),
    "e2": ("e", ("e2", "0"), "{V(n1)*2}", None, ()),
    "g1": ("g", ("g1", "0", "n1", "0"), 1e-3, None, ()),
    "f1": ("f", ("f1", "0"), 3.0, None, ("v1",)),
    "h1": ("h", ("h1", "0"), 100.0, None, ("v1",)),
    "d1": ("d", ("n1", "0"), None, "dmod", ()),
    "q1": ("q", ("c1", "b1", "0"), None, "qmod", ()),
    "m1": ("m", ("d1", "g1", "0", "0"), None, "nch", ()),
    "s1": ("s", ("s1", "0", "n1", "0"), None, "vsw", ()),
    "w1": ("w", ("w1", "0"), None, "isw", ("v1",)),
    "t1": ("t", ("t1", "0", "t2", "0"), None, None, ()),
    "x1": ("x", ("in", "n1", "n2"), None, "pair", ()),
    "v2": ("v", ("a1", "0"), "PULSE(0 1 1n 1n 1n 5n 10n)", None, ()),
    "b2": ("b", ("bb", "0"), "v(in) > 0.5 ? 1 : 0", None, ()),
}


@pytest.mark.parametrize("name", sorted(ELEMENT_CASES))
def test_element_fields(name):
    element = _elements(_read("element_types.cir"))[name]
    kind, nodes, value, model, controls = ELEMENT_CASES[name]
    assert element.kind == kind
    assert element.nodes == nodes
    assert element.value == value
    assert element.model == model
    assert element.controls == controls


def test_element_params():
    elements = _elements(_read("element_types.cir"))
    assert elements["m1"].params == {"w": "1u", "l": "1u"}
    assert elements["t1"].params == {"z0": "50", "td": "1n"}
    assert elements["c1"].params == {"ic": "0"}


def test_b_source_trailing_params():
    b2 = _elements(_read("element_types.cir"))["b2"]
    assert b2.params == {"v": "v(in) > 0.5 ? 1 : 0", "tc1": "0.1"}


def test_b_source_current():
    netlist = parse_netlist("t\nB1 a 0 I = 1e-4*stp(V(a))\n")
    assert netlist.elements[0].params == {"i": "1e-4*stp(V(a))"}


def test_x_params_with_spaces():
    netlist = parse_netlist("t\nX1 a b cell params: g = {2*g0} vref= 0.3 w =1\n")
    element = netlist.elements[0]
    assert element.nodes == ("a", "b")
    assert element.model == "cell"
    assert element.subckt_name == "cell"
    assert element.params == {"g": "{2*g0}", "vref": "0.3", "w": "1"}


def test_x_node_count_any():
    netlist = parse_netlist("t\nX1 a b c d e big\n")
    assert netlist.elements[0].nodes == ("a", "b", "c", "d", "e")


def test_bjt_substrate_node_without_model_card():
    netlist = parse_netlist("t\nQ1 c b e s qext 2.0 off\n")
    element = netlist.elements[0]
    assert element.nodes == ("c", "b", "e", "s")
    assert element.model == "qext"
    assert element.value == 2.0


def test_resistor_expression_value():
    netlist = parse_netlist("t\n.param r0=1k\nR1 a 0 {r0 * 2}\n")
    assert netlist.elements[0].value == "{r0 * 2}"


def test_resistor_model_name():
    netlist = parse_netlist("t\nR1 a 0 rpoly l=10u w=1u\n")
    element = netlist.elements[0]
    assert element.model == "rpoly"
    assert element.value is None


def test_commas_separate_tokens():
    netlist = parse_netlist("t\nV1 a 0 SIN(0,1,1k)\nX1 a,b cell\n")
    assert netlist.elements[1].nodes == ("a", "b")


def test_subckt_elements_scoped():
    netlist = _read("element_types.cir")
    pair = netlist.subckts["pair"]
    assert [element.name for element in pair.elements] == ["x1", "x2"]
    assert {element.subckt for element in pair.elements} == {"pair"}


def test_top_level_excludes_subckt_elements():
    netlist = _read("element_types.cir")
    assert "b1" not in {element.name for element in netlist.elements}


# --- dot cards


def test_subckt_header_continuation():
    cell = _read("element_types.cir").subckts["cell"]
    assert cell.pins == ("top", "bot")
    assert cell.params == {"g": "1e-4", "vref": "0.25"}
    assert (cell.line, cell.end_line) == (11, 14)


def test_params():
    params = _read("element_types.cir").params
    assert [(param.name, param.value_text, param.value) for param in params] == [
        ("rw", "2.5", 2.5), ("rdev", "{rw*4}", None)]


def test_param_unbraced_expression():
    netlist = parse_netlist("t\n.param x = 2 * y\n")
    assert netlist.params[0].value_text == "2 * y"


def test_models():
    models = {model.name: model for model in _read("element_types.cir").models}
    assert models["dmod"].type == "d"
    assert models["dmod"].params == {"is": "1e-14", "n": "1.5"}
    assert models["qmod"].params == {"bf": "100", "vaf": "50"}
    assert models["nch"].params == {"level": "1", "vto": "0.7"}


def test_options_and_flags():
    options = _read("element_types.cir").options[0]
    assert options.params == {"reltol": "1e-6", "abstol": "1e-15"}
    assert options.flags == ("noacct",)


def test_analyses():
    analyses = _read("element_types.cir").analyses
    assert [(analysis.kind, analysis.args) for analysis in analyses] == [
        ("tran", ("1n", "100n")), ("op", ())]


def test_func():
    function = _read("element_types.cir").functions[0]
    assert (function.name, function.args, function.body) == ("sq", ("x",), "{x*x}")


def test_other_dot_card_kept():
    cards = _read("element_types.cir").other_cards
    assert [(card.keyword, card.args) for card in cards] == [(".save", "all")]


def test_includes_and_lib():
    text = ('t\n.include models/a.inc\n.inc "with space.inc"\n'
            ".lib 'lib/cells.lib' fast\n.end\n")
    includes = parse_netlist(text).includes
    assert [(item.kind, item.path, item.section, item.line) for item in includes] == [
        ("include", "models/a.inc", None, 2), ("include", "with space.inc", None, 3),
        ("lib", "lib/cells.lib", "fast", 4)]


def test_lib_section_definition():
    text = ".lib fast\n.model d1 D(is=1e-14)\n.endl\n"
    netlist = parse_netlist(text, title_line=False)
    assert [(section.name, section.line, section.end_line)
            for section in netlist.lib_sections] == [("fast", 1, 3)]


def test_control_block_lines_kept():
    text = "t\nR1 a 0 1k\n.control\nop\nshell ls\n.endc\n.end\n"
    block = parse_netlist(text).controls[0]
    assert (block.line, block.end_line) == (3, 6)
    assert [(line.line, line.command) for line in block.lines] == [(4, "op"), (5, "shell ls")]


def test_global_nodes():
    netlist = parse_netlist("t\n.global vdd vss\nR1 vdd 0 1k\n")
    assert netlist.global_nodes == frozenset({"vdd", "vss"})


def test_include_without_title():
    netlist = parse_netlist("R1 a 0 1k\n", title_line=False)
    assert [element.name for element in netlist.elements] == ["r1"]


# --- cards that ngspice runs


def test_hash_line_is_command():
    netlist = parse_netlist("t\n*# echo hi\n  *#shell ls\nR1 a 0 1k\n")
    assert [(line.line, line.command) for line in netlist.hash_commands] == [
        (2, "echo hi"), (3, "shell ls")]


def test_ng_script_file():
    netlist = parse_netlist("*NG_SCRIPT demo\necho hi\nshell ls\n")
    assert netlist.is_script
    assert [line.command for line in netlist.controls[0].lines] == ["echo hi", "shell ls"]


def test_shell_card_outside_control():
    netlist = parse_netlist("t\nshell touch x\nR1 a 0 1k\n")
    assert [card.line for card in netlist.shell_cards] == [2]


def test_after_end_control_and_include_kept():
    text = "t\nR1 a 0 1k\n.end\n.control\necho late\n.endc\n.include late.inc\nR9 x\n"
    netlist = parse_netlist(text)
    assert netlist.end_line == 3
    assert [block.line for block in netlist.controls] == [4]
    assert [include.path for include in netlist.includes] == ["late.inc"]
    assert [card.line for card in netlist.ignored_cards] == [8]


# --- errors


@pytest.mark.parametrize(("text", "message"), [
    ("t\n.subckt cell a b\nR1 a b 1k\n", "line 2: .subckt cell has no matching .ends"),
    ("t\nR1 a 0 1k\n.ends\n", "line 3: .ends without a .subckt"),
    ("t\n.control\nop\n", "line 2: .control block has no .endc"),
    ("t\n.endc\n", "line 2: .endc without a .control"),
    ("t\n+ 1k\n", "line 2: continuation line"),
    ("t\nR1 a\n", "line 2: element 'R1' needs 2 nodes and a value"),
    ("t\n.subckt cell a b\n.end\n", "line 3: .end inside .subckt cell"),
    ("t\n.subckt c a\n.ends\n.subckt c a\n.ends\n", "line 4: subcircuit 'c' is already defined"),
    ("t\n1R a 0 1k\n", "line 2: '1R' is not an element or a dot card"),
    ("t\n.param 5\n", "line 2: .param expects name=value"),
    ("t\nB1 a 0 1k\n", "line 2: B source 'B1' needs V=expression or I=expression"),
    ("", "empty netlist"),
])
def test_bad_input_raises(text, message):
    with pytest.raises(NetlistError) as caught:
        parse_netlist(text)
    assert message in str(caught.value)


# --- subcircuit headers for the device library


def test_read_subckt_header():
    text = ("My memristor models\n"
            ".subckt mem top bot params: ron=1e3\n+ roff = 1e6\nR1 top bot {ron}\n.ends\n"
            ".subckt other a b c\n.subckt inner x y\n.ends inner\n.ends other\n")
    headers = read_subckt_header(text)
    assert [(header.name, header.pins, header.params, header.line) for header in headers] == [
        ("mem", ("top", "bot"), {"ron": "1e3", "roff": "1e6"}, 2),
        ("other", ("a", "b", "c"), {}, 6)]


def test_read_subckt_header_keeps_spelling():
    header = read_subckt_header(".SUBCKT MemCell p n\n.ENDS\n")[0]
    assert (header.name, header.raw_name) == ("memcell", "MemCell")


def test_read_subckt_header_skips_unknown_cards():
    headers = read_subckt_header("* lib\n.subckt a p n\n?? odd card\n.ends\n")
    assert [header.name for header in headers] == ["a"]


def test_read_subckt_header_missing_ends():
    with pytest.raises(NetlistError, match="line 1: .subckt a has no matching .ends"):
        read_subckt_header(".subckt a p n\nR1 p n 1k\n")


def test_split_cards_counts_lines():
    split = split_cards("t\nR1 a 0 1k\n\n.end\n")
    assert split.line_count == 4
    assert [card.keyword for card in split.cards] == ["r1", ".end"]
