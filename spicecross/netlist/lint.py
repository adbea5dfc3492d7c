"""Lint for ngspice netlists: mistakes that ngspice 39 accepts silently or rejects late.

:func:`lint_netlist` returns :class:`Finding` objects. Errors are cards that
ngspice 39 rejects or that make the circuit unsolvable. Warnings are cards
that run but probably do not mean what their author wanted. Each behaviour
named in a message was checked with ``ngspice -b`` on ngspice 39.3.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import networkx as nx

from spicecross.devices.library import InstanceParamProblem, builtin_subckt_laws, check_builtin_instance_param
from spicecross.netlist.parse import GROUND_NODES, Card, Element, Netlist, Segment, Subckt
from spicecross.units import parse_value

# Canonical name of the ground node: ngspice turns "gnd" into "0".
GROUND = "0"

# Node names that look like ground but are ordinary nodes in ngspice 39.
_GROUND_LOOKALIKE = re.compile(r"^(?:(?:0|gnd|ground|agnd|dgnd)!|ground|00+)$")

# Cards whose text is an expression, where '*' is multiplication.
_EXPRESSION_CARDS = frozenset({".param", ".func", ".meas", ".measure", ".if",
                               ".elseif", ".csparam"})

# A value with a bare m/M scale suffix: milli in SPICE, not mega.
_MILLI_SUFFIX = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?m(?!eg|il)",
                           re.IGNORECASE)

# Parameter values of X instances. ngspice 39 evaluates them as .param
# expressions, so a bare name or an unbraced expression such as 2*gval is valid.
_NAME_VALUE = re.compile(r"^[a-z_]\w*$", re.IGNORECASE)
_NUMBER_START = re.compile(r"^(?:\d|\.\d)")
# ngspice 39 reads 0x10 as 16.
_HEX_VALUE = re.compile(r"^0x[0-9a-f]", re.IGNORECASE)
# An operator or bracket, but not the sign of an exponent such as e-4.
_OPERATOR = re.compile(r"[-+*/^%()<>=!?:&|](?<![eE][-+])")
# A number with its scale suffix in place of the decimal point, such as 1u5 for 1.5u.
_SUFFIX_AS_POINT = re.compile(r"^([+-]?\d+)(meg|[tgkmunpf])(\d+)$", re.IGNORECASE)

# Findings of one code beyond this count are merged into one summary finding.
MAX_FINDINGS_PER_CODE = 20


@dataclass(frozen=True)
class Finding:
    """One lint result.

    ``code`` is a short stable id such as ``no-ground``, ``severity`` is
    ``"error"`` or ``"warning"``, ``line`` and ``column`` are 1-based and
    ``None`` where no single card is to blame. ``fix`` is the change to make.
    """

    code: str
    severity: str
    line: int | None
    column: int | None
    message: str
    fix: str

    def to_dict(self) -> dict:
        """Return the finding as a JSON-ready dict."""
        return asdict(self)

    def format(self) -> str:
        """Return the finding as one line, such as ``line 4:16: warning [code] message``."""
        where = ""
        if self.line is not None:
            where = f"line {self.line}" + (f":{self.column}" if self.column else "") + ": "
        return f"{where}{self.severity} [{self.code}] {self.message} Fix: {self.fix}"


# ---------------------------------------------------------------------------
# Functions and constants that ngspice 39 does not define.
#
# Two expression languages exist in ngspice: B-source expressions (also E/G
# "value=" forms, which ngspice turns into B sources) and the numparam
# language of .param cards and {...} or '...' expressions. Each table entry
# was run through ngspice 39.3: "no such function" or "Undefined parameter".

# Function name -> (fix in a B source, fix in .param or {...}), where None
# means that ngspice 39 has no equivalent.
_FUNCTIONS_MISSING_EVERYWHERE: dict[str, tuple[str | None, str | None]] = {
    "stp": ("replace stp(x) with u(x)", "replace stp(x) with the ternary (x > 0 ? 1 : 0)"),
    "if": ("replace if(c, a, b) with the ternary ((c) ? a : b)",
           "replace if(c, a, b) with the ternary ((c) ? a : b)"),
    "sdt": ("integrate with a capacitor: a B source I=x into a 1 F capacitor to ground "
            "has the integral of x as its voltage", None),
    "idt": ("integrate with a capacitor: a B source I=x into a 1 F capacitor to ground "
            "has the integral of x as its voltage", None),
    "buf": ("replace buf(x) with ((x > 0.5) ? 1 : 0)", "replace buf(x) with (x > 0.5 ? 1 : 0)"),
    "inv": ("replace inv(x) with ((x > 0.5) ? 0 : 1)", "replace inv(x) with (x > 0.5 ? 0 : 1)"),
    "round": ("replace round(x) with nint(x)", "replace round(x) with nint(x)"),
    "hypot": ("replace hypot(x, y) with sqrt(x*x + y*y)",
              "replace hypot(x, y) with sqrt(x*x + y*y)"),
    "pwrs": ("replace pwrs(x, y) with pwr(x, y): in B sources ngspice's pwr keeps the sign of x",
             "replace pwrs(x, y) with sgn(x)*pwr(x, y): in .param ngspice's pwr is |x|^y"),
    "table": ("replace table(x, x1, y1, x2, y2, ...) with pwl(x, x1, y1, x2, y2, ...)", None),
    "delay": ("delay a signal with a lossless transmission line (T element with td=...)", None),
    "absdelay": ("delay a signal with a lossless transmission line (T element with td=...)",
                 None),
    "atan2": (None, None),
    "white": (None, None),
    "rand": (None, None),
    "random": (None, None),
}
_FUNCTIONS_MISSING_IN_NUMPARAM: dict[str, str] = {
    "u": "replace u(x) with the ternary (x > 0 ? 1 : 0)",
    "uramp": "replace uramp(x) with the ternary (x > 0 ? x : 0)",
}
# Constant name -> number to write instead, in SI units. kelvin is 0 K in °C.
_CONSTANTS_MISSING_EVERYWHERE = {
    "boltz": "1.380649e-23",
    "echarge": "1.602176634e-19",
    "planck": "6.62607015e-34",
    "kelvin": "-273.15",
}
_CONSTANTS_MISSING_IN_NUMPARAM = {
    "pi": "3.141592653589793",
    "e": "2.718281828459045",
}

_CALL = re.compile(r"(?<![\w.$])([a-z_]\w*)\s*\(", re.IGNORECASE)
_NAME = re.compile(r"(?<![\w.$])([a-z_]\w*)\b(?!\s*\()", re.IGNORECASE)
_PROBE = re.compile(r"(?<![\w.])[vi]\s*\([^()]*\)", re.IGNORECASE)
_VOLTAGE_PROBE = re.compile(r"(?<![\w.])v\s*\(\s*([^,()\s]+)\s*(?:,\s*([^,()\s]+)\s*)?\)",
                            re.IGNORECASE)
_BRACED = re.compile(r"\{([^{}]*)\}|'([^']*)'")


def lint_netlist(netlist: Netlist, *,
                 library: Mapping[str, Subckt] | None = None) -> list[Finding]:
    """Check a parsed netlist and return the findings, sorted by line.

    ``library`` adds subcircuits defined outside the netlist, such as those
    of its included files, so that X instances of them can be checked.
    Nothing is run: the checks read the parsed cards only.
    """
    cards_by_line = {card.line: card for card in netlist.cards}
    findings: list[Finding] = []
    findings += _check_midline_star(netlist)
    findings += _check_resistor_values(netlist, cards_by_line)
    findings += _check_atto_suffix(netlist, cards_by_line)
    findings += _check_param_commas(netlist)
    findings += _check_instance_params(netlist, cards_by_line, dict(library or {}))
    findings += _check_names(netlist)
    findings += _check_expressions(netlist, cards_by_line)
    findings += _check_connectivity(netlist, dict(library or {}))
    findings += _check_voltage_loops(netlist)
    findings += _check_after_end(netlist)
    findings = _limit_per_code(findings)
    findings.sort(key=lambda item: (item.line or 0, item.column or 0, item.code))
    return findings


def _limit_per_code(findings: list[Finding]) -> list[Finding]:
    by_code: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_code[finding.code].append(finding)
    kept: list[Finding] = []
    for code, items in by_code.items():
        kept += items[:MAX_FINDINGS_PER_CODE]
        if len(items) > MAX_FINDINGS_PER_CODE:
            rest = items[MAX_FINDINGS_PER_CODE:]
            kept.append(Finding(
                code, rest[0].severity, rest[0].line, None,
                f"{len(rest)} more {code} findings, the first of them at line "
                f"{rest[0].line}.", rest[0].fix))
    return kept


def _locate(card: Card | None, pattern: re.Pattern) -> tuple[int | None, int | None]:
    """Return the line and column of the first match of ``pattern`` in a card."""
    if card is None:
        return None, None
    for segment in card.segments:
        match = pattern.search(segment.text)
        if match is not None:
            return segment.line, segment.column + match.start()
    return card.line, None


# ---------------------------------------------------------------------------
# Mid-line '*'


def _check_midline_star(netlist: Netlist) -> list[Finding]:
    findings = []
    for card in netlist.cards:
        keyword = card.keyword
        if keyword in _EXPRESSION_CARDS:
            continue
        # In B, E, F, G and H sources '*' after '=' is multiplication.
        stop_at_equals = keyword[0] in "befgh"
        position = _find_star(card, stop_at_equals)
        if position is None:
            continue
        line, column, rest = position
        findings.append(Finding(
            "midline-star", "error", line, column,
            f"'*' at line {line}, column {column} is not a comment in ngspice: "
            f"'{rest}' stays part of card {card.text.split()[0]}, and ngspice 39 "
            "reads it as parameters and stops with an error such as "
            "\"unknown parameter (*)\".",
            "start the comment with ';' instead of '*'"))
    return findings


def _unnested(segments: Iterable[Segment]) -> Iterable[tuple[int, Segment, int, str]]:
    """Yield (segment number, segment, index, character) outside quotes, braces and parentheses.

    Quotes and nesting carry over from one continuation segment to the next.
    """
    depth = 0
    quote = ""
    for number, segment in enumerate(segments):
        for index, char in enumerate(segment.text):
            if quote:
                if char == quote:
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char in "({":
                depth += 1
            elif char in ")}":
                depth = max(depth - 1, 0)
            elif depth == 0:
                yield number, segment, index, char


def _find_star(card: Card, stop_at_equals: bool) -> tuple[int, int, str] | None:
    if "*" not in card.text:
        return None
    for number, segment, index, char in _unnested(card.segments):
        if char == "=" and stop_at_equals:
            return None
        if char == "*":
            text = segment.text
            starts_word = text[index - 1].isspace() if index else number > 0
            if starts_word:
                return segment.line, segment.column + index, text[index:].strip()
    return None


# ---------------------------------------------------------------------------
# Resistor values


def _check_resistor_values(netlist: Netlist, cards_by_line: dict[int, Card]) -> list[Finding]:
    findings = []
    for element in netlist.all_elements():
        if element.kind != "r" or element.value_text is None:
            continue
        is_zero = isinstance(element.value, float) and element.value == 0.0
        if not is_zero and not _MILLI_SUFFIX.match(element.value_text):
            continue
        card = cards_by_line.get(element.line)
        token = re.compile(r"(?<![\w.])" + re.escape(element.value_text) + r"(?![\w.])")
        if is_zero:
            line, column = _locate(card, token)
            first, second = element.nodes
            findings.append(Finding(
                "zero-resistance", "warning", line, column,
                f"resistor {element.name} between {first} and {second} is 0 Ω: ngspice "
                "replaces it by a small resistance (1 mΩ without a warning in ngspice 39, "
                "1e-12 Ω with one in ngspice 44), so this 'ideal' wire still drops voltage "
                "and its drop depends on the ngspice version.",
                f"merge nodes {first} and {second} into one node and remove "
                f"{element.name}, or write the small resistance you mean explicitly, "
                "such as 1e-3"))
        else:
            line, column = _locate(card, token)
            number = re.match(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?",
                              element.value_text, re.IGNORECASE).group(0)
            findings.append(Finding(
                "milli-ohm-suffix", "warning", line, column,
                f"resistor {element.name} is {element.value_text!r} = {element.value:g} Ω: "
                "SPICE reads m and M as milli, not mega.",
                f"if you mean {number} MΩ write {number}meg or {number}e6; if you mean "
                f"{number} mΩ write {number}e-3"))
    return findings


# ---------------------------------------------------------------------------
# Syntax that ngspice 39 and 44 read differently


def _check_param_commas(netlist: Netlist) -> list[Finding]:
    """Find .param cards with commas between assignments, on which ngspice 39 hangs."""
    findings = []
    for card in netlist.cards:
        if card.keyword != ".param":
            continue
        comma = next(((segment, index) for _, segment, index, char in _unnested(card.segments)
                      if char == ","), None)
        if comma is not None:
            segment, index = comma
            findings.append(Finding(
                "param-comma", "warning", segment.line, segment.column + index,
                "a comma separates the assignments of this .param card: ngspice 39.3 "
                "hangs on such a card until its time limit (ngspice 44.2 reads it).",
                "separate the assignments with spaces, such as '.param g0=1e-4 g1=2e-4'"))
    return findings


_ATTO_SUFFIX = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)a[a-z]*$", re.IGNORECASE)


def _check_atto_suffix(netlist: Netlist, cards_by_line: dict[int, Card]) -> list[Finding]:
    """Find values with the suffix ``a``, which ngspice 44 reads as atto and ngspice 39 ignores."""
    findings = []
    for element in netlist.all_elements():
        card = cards_by_line.get(element.line)
        values = [("value", element.value_text)] if element.value_text else []
        values += list(element.params.items()) if element.kind == "x" else []
        for key, text in values:
            match = _ATTO_SUFFIX.match(str(text).strip())
            if match is None:
                continue
            number = match.group(1)
            if key == "value":
                token = re.compile(r"(?<![\w.])" + re.escape(str(text).strip()) + r"(?![\w.])")
                line, column = _locate(card, token)
                subject = f"the value of {element.name}"
            else:
                line, column = _locate_assignment(card, key, text)
                subject = f"{element.name} {key}"
            findings.append(Finding(
                "atto-suffix", "warning", line, column,
                f"{subject} is {text!r}: ngspice 44 reads the suffix a as atto (1e-18), but "
                "ngspice 39 ignores it, so the value differs by 1e18 between versions.",
                f"write {float(number) * 1e-18:.6g} if you mean atto, or {number} "
                "without the suffix"))
    return findings


# ---------------------------------------------------------------------------
# Parameter values of X instances


def _check_instance_params(netlist: Netlist, cards_by_line: dict[int, Card],
                           library: dict[str, Subckt]) -> list[Finding]:
    """Find X-instance parameter values that are not numbers, and out-of-range values of built-in devices."""
    defined = _defined_names(netlist)
    for subckt in library.values():
        defined.update(subckt.params)
    # NOTE: lint_netlist receives the subcircuits of included files but not
    # their .param cards, so bare names are not checked in a netlist with includes.
    check_names = not netlist.includes
    builtin = builtin_subckt_laws()
    # Top-level .param names whose value is a plain number, so that g=gneg is range-checked too.
    numbers = {param.name.lower(): param.value for param in netlist.params
               if param.subckt is None and param.value is not None}
    findings = []
    for element in netlist.all_elements():
        if element.kind != "x":
            continue
        card = cards_by_line.get(element.line)
        for key, text in element.params.items():
            kind, value, name = _read_instance_value(text)
            if kind == "name" and name.lower() in numbers:
                sign = -1.0 if text.strip().strip('"').startswith("-") else 1.0
                kind, value = "number", sign * numbers[name.lower()]
            if kind == "malformed" or (kind == "name" and check_names
                                       and name.lower() not in defined):
                line, column = _locate_assignment(card, key, text)
                findings.append(_not_number_finding(element, key, text, name,
                                                    line or element.line, column))
            elif kind == "number" and element.model in builtin:
                problem = check_builtin_instance_param(element.model, key, value)
                if problem is not None:
                    line, column = _locate_assignment(card, key, text)
                    findings.append(_device_range_finding(element, problem, key, value,
                                                          line or element.line, column))
    return findings


def _read_instance_value(text: str) -> tuple[str, float | None, str | None]:
    """Classify an X-instance parameter value as ngspice 39 reads it.

    Returns ``(kind, number, name)``, where ``kind`` is one of:

    - ``"number"``: a SPICE number, whose float is ``number``.
    - ``"name"``: a bare parameter name with an optional sign, given in ``name``.
    - ``"malformed"``: an empty value, or one that starts as a number but is not one.
    - ``"expression"``: anything else, which ngspice evaluates as an expression
      and which is not checked here.

    ngspice evaluates a value in double quotes as if the quotes were absent.
    """
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    if not text:
        return "malformed", None, None
    if text[0] in "{'":
        return "expression", None, None
    try:
        return "number", parse_value(text), None
    except ValueError:
        pass
    body = text[1:] if text[0] in "+-" else text
    if _NAME_VALUE.match(body):
        return "name", None, body
    if _NUMBER_START.match(body) and not _HEX_VALUE.match(body) and not _OPERATOR.search(body):
        return "malformed", None, None
    return "expression", None, None


def _locate_assignment(card: Card | None, key: str, text: str) -> tuple[int | None, int | None]:
    """Return the line and column of the value in ``key=text``, or of ``key`` when the value is empty."""
    if card is None:
        return None, None
    pattern = re.compile(r"(?<![^\s,])(" + re.escape(key) + r")\s*=\s*(" + re.escape(text)
                         + r")(?![^\s,])", re.IGNORECASE)
    group = 2 if text else 1
    for segment in card.segments:
        match = pattern.search(segment.text)
        if match is not None:
            return segment.line, segment.column + match.start(group)
    # The '=' and the value are on different physical lines.
    return _locate(card, re.compile(r"(?<![^\s,=])" + re.escape(text) + r"(?![^\s,])"))


def _not_number_finding(element: Element, key: str, text: str, name: str | None,
                        line: int, column: int | None) -> Finding:
    where = f" in subcircuit {element.subckt}" if element.subckt else ""
    subject = f"parameter {key}={text} of instance {element.raw_name}{where}"
    if not text:
        return Finding(
            "param-not-number", "error", line, column,
            f"parameter {key} of instance {element.raw_name}{where} has no value after "
            "'=', so it is not a number.",
            f"write a number after '=', such as {key}=1e-4, or remove '{key}=' to use "
            "the subcircuit's default")
    if name is not None:
        return Finding(
            "param-not-number", "error", line, column,
            f"{subject} is not a number, and no .param defines {name}, so ngspice 39 "
            f"stops with \"Undefined parameter [{name.lower()}]\".",
            f"write a number in SPICE syntax, such as 1e-4 or 100u, or define {name} "
            f"with '.param {name}=VALUE'")
    fix = "write a number in SPICE syntax, such as 1e-4 or 100u"
    match = _SUFFIX_AS_POINT.match(text.strip('"'))
    if match is not None:
        whole, suffix, fraction = match.groups()
        fix = (f"write {whole}.{fraction}{suffix} if that is the value you mean: "
               f"ngspice 39 does not read a scale suffix in place of the decimal point")
    return Finding(
        "param-not-number", "error", line, column,
        f"{subject} is not a number: a SPICE number is digits with an optional "
        "exponent and scale suffix, such as 1.5e-6 or 1.5u, and ngspice 39 stops with "
        "\"Formula() error\".",
        fix)


def _device_range_finding(element: Element, problem: InstanceParamProblem, key: str,
                          value: float, line: int, column: int | None) -> Finding:
    where = f" in subcircuit {element.subckt}" if element.subckt else ""
    message = (f"in instance {element.raw_name}{where} of built-in device {element.model}, "
               f"{problem.message}.")
    # Every built-in device file computes a current proportional to g.
    if key == "g" and value == 0:
        message += " ngspice 39 runs it without an error, and the device carries no current."
    elif key == "g":
        message += (" ngspice 39 runs it without an error, and the device's current flows "
                    "against the applied voltage.")
    return Finding("device-param-range", "error", line, column, message, problem.fix)


# ---------------------------------------------------------------------------
# Names


def _check_names(netlist: Netlist) -> list[Finding]:
    findings = []
    first_use: dict[tuple[str | None, str], int] = {}
    spellings: dict[tuple[str | None, str], dict[str, int]] = defaultdict(dict)
    for element in netlist.all_elements():
        key = (element.subckt, element.name)
        if key in first_use:
            where = f" in subcircuit {element.subckt}" if element.subckt else ""
            findings.append(Finding(
                "duplicate-element", "error", element.line, 1,
                f"element name {element.raw_name!r}{where} is already used at line "
                f"{first_use[key]}: ngspice compares names without case and stops with "
                "an error.",
                f"rename one of the two {element.raw_name} elements"))
        else:
            first_use[key] = element.line
        for raw in element.raw_nodes:
            spellings[(element.subckt, raw.lower())].setdefault(raw, element.line)
    for subckt in netlist.subckts.values():
        for raw in subckt.raw_pins:
            spellings[(subckt.name, raw.lower())].setdefault(raw, subckt.line)

    for (scope, lower), seen in spellings.items():
        if len(seen) < 2 or lower in GROUND_NODES:
            continue
        listed = ", ".join(f"{raw!r} (line {line})" for raw, line in seen.items())
        where = f" in subcircuit {scope}" if scope else ""
        findings.append(Finding(
            "node-case", "warning", min(seen.values()), None,
            f"node names {listed}{where} differ only in case: ngspice lower-cases them "
            f"into one node {lower!r}, which connects everything on them.",
            "give the nodes names that differ in more than case, or write one spelling "
            "everywhere if they are meant to be one node"))
    return findings


# ---------------------------------------------------------------------------
# Expressions


def _defined_names(netlist: Netlist) -> set[str]:
    names = {param.name for param in netlist.params}
    names.update(function.name for function in netlist.functions)
    for subckt in netlist.subckts.values():
        names.update(subckt.params)
    return names


def _braced_parts(text: str) -> list[str]:
    if "{" not in text and "'" not in text:
        return []
    return [match.group(1) if match.group(1) is not None else match.group(2)
            for match in _BRACED.finditer(text)]


def _expression_texts(netlist: Netlist) -> Iterable[tuple[int, str, str, frozenset[str]]]:
    """Yield ``(line, text, language, local names)`` for every expression of the netlist.

    ``language`` is ``"behavioral"`` for B-source expressions and
    ``"numparam"`` for .param values and {...} or '...' expressions.
    """
    no_locals: frozenset[str] = frozenset()
    for element in netlist.all_elements():
        texts = [element.value_text or ""] + list(element.params.values())
        behavioral = None
        if element.kind == "b":
            behavioral = element.value
        elif element.kind in ("e", "g") and len(element.nodes) == 2:
            behavioral = element.value_text
        if isinstance(behavioral, str):
            yield element.line, _BRACED.sub(" 0 ", behavioral), "behavioral", no_locals
        for text in texts:
            for part in _braced_parts(text):
                yield element.line, part, "numparam", no_locals
    for param in netlist.params:
        yield param.line, param.value_text.strip("{}'\""), "numparam", no_locals
    for subckt in netlist.subckts.values():
        for text in subckt.params.values():
            yield subckt.line, text.strip("{}'\""), "numparam", no_locals
    for model in netlist.models:
        for text in model.params.values():
            for part in _braced_parts(text):
                yield model.line, part, "numparam", no_locals
    for function in netlist.functions:
        # A .func body may end up in either language: check what both lack.
        yield (function.line, function.body.strip("{}'\""), "function",
               frozenset(function.args))


def _check_expressions(netlist: Netlist, cards_by_line: dict[int, Card]) -> list[Finding]:
    defined = _defined_names(netlist)
    findings = []
    reported: set[tuple[int, str]] = set()
    for line, text, language, local_names in _expression_texts(netlist):
        if not text or not any(char.isalpha() for char in text):
            continue
        skip = defined | local_names
        stripped = _PROBE.sub(" 0 ", text)
        for name, kind, fix in _missing_names(stripped, language, skip):
            if (line, name) in reported:
                continue
            reported.add((line, name))
            card = cards_by_line.get(line)
            pattern = re.compile(r"(?<![\w.])" + re.escape(name) + r"\b", re.IGNORECASE)
            found_line, column = _locate(card, pattern)
            findings.append(_expression_finding(name, kind, language, fix,
                                                found_line or line, column))
    return findings


def _missing_names(text: str, language: str, skip: set[str]
                   ) -> Iterable[tuple[str, str, str | None]]:
    """Yield ``(name, "function" or "constant", fix)`` for each name ngspice 39 lacks."""
    for match in _CALL.finditer(text):
        name = match.group(1).lower()
        if name in skip:
            continue
        if name in _FUNCTIONS_MISSING_EVERYWHERE:
            behavioral_fix, numparam_fix = _FUNCTIONS_MISSING_EVERYWHERE[name]
            yield name, "function", numparam_fix if language == "numparam" else behavioral_fix
        elif language == "numparam" and name in _FUNCTIONS_MISSING_IN_NUMPARAM:
            yield name, "function", _FUNCTIONS_MISSING_IN_NUMPARAM[name]
    for match in _NAME.finditer(text):
        name = match.group(1).lower()
        if name in skip:
            continue
        if name in _CONSTANTS_MISSING_EVERYWHERE:
            yield name, "constant", f"write the number {_CONSTANTS_MISSING_EVERYWHERE[name]}"
        elif language == "numparam" and name in _CONSTANTS_MISSING_IN_NUMPARAM:
            yield name, "constant", f"write the number {_CONSTANTS_MISSING_IN_NUMPARAM[name]}"


def _expression_finding(name: str, kind: str, language: str, fix: str | None,
                        line: int, column: int | None) -> Finding:
    where = {"behavioral": "B-source expressions",
             "numparam": ".param and {...} expressions",
             "function": "B-source or .param expressions"}[language]
    if kind == "function":
        code = "unsupported-function"
        what = f"function {name}() is not defined in ngspice 39 {where}"
        if name in _FUNCTIONS_MISSING_EVERYWHERE:
            what += " (it comes from LTspice or PSpice)"
        error = (f"\"Undefined parameter [{name}]\"" if language == "numparam"
                 else f"\"no such function '{name}'\"")
    else:
        code = "unsupported-constant"
        what = f"constant {name} is not defined in ngspice 39 {where}"
        error = f"\"Undefined parameter [{name}]\""
    if fix is None:
        fix = f"rewrite the expression without {name}: ngspice 39 has no equivalent"
    return Finding(code, "error", line, column, f"{what}, so ngspice stops with {error}.", fix)


# ---------------------------------------------------------------------------
# Connectivity: ground, floating nodes, DC paths, subcircuit instances


@dataclass
class _Summary:
    """Outside view of a subcircuit, which is all that its X instances need.

    ``groups`` contains, for each set of pins and global nodes that the
    definition connects with DC paths, the pin indices (int) and global node
    names (str). ``pin_terminals`` is the number of element terminals on each
    pin inside the definition, nested instances included.
    """

    groups: list[set]
    pin_terminals: list[int]


@dataclass
class _Connectivity:
    netlist: Netlist
    library: dict[str, Subckt]
    global_nodes: frozenset[str]
    summaries: dict[str, _Summary]
    visiting: set[str]
    findings: list[Finding]
    probed: set[str]
    unknown: Counter
    unknown_line: dict[str, int]
    pin_mismatch: dict[str, list[int]]


def _canonical(node: str) -> str:
    return GROUND if node == "gnd" else node


def _probed_nodes(netlist: Netlist) -> set[str]:
    """Return the nodes that an expression reads with v(...), which makes them used."""
    probed = set()
    for element in netlist.all_elements():
        if element.kind in "begh" and isinstance(element.value, str):
            for match in _VOLTAGE_PROBE.finditer(element.value):
                probed.update(_canonical(node.lower()) for node in match.groups() if node)
    return probed


def _references_own_nodes(element: Element) -> bool:
    if not isinstance(element.value, str):
        return False
    own = {_canonical(node) for node in element.nodes}
    for match in _VOLTAGE_PROBE.finditer(element.value):
        if any(node and _canonical(node.lower()) in own for node in match.groups()):
            return True
    return False


def _dc_groups(element: Element, nodes: list[str]) -> list[list[str]]:
    """Return the sets of an element's nodes that it connects with a DC path.

    Capacitors, current sources and the controlling inputs of controlled
    sources carry no DC current. A B or G source of current conducts when its
    expression reads the voltage of its own nodes, as a resistor would. Types
    whose internals are not modelled here (transmission lines, XSPICE and
    OSDI devices) count as connecting all their nodes.
    """
    kind = element.kind
    if kind in ("c", "i", "k", "f"):
        return []
    if kind in ("r", "l", "v", "h", "s", "w", "e"):
        return [nodes[:2]]
    if kind == "b":
        if "v" in element.params or _references_own_nodes(element):
            return [nodes[:2]]
        return []
    if kind == "g":
        if len(nodes) == 4 and set(nodes[2:]) == set(nodes[:2]):
            return [nodes[:2]]
        if len(nodes) == 2 and _references_own_nodes(element):
            return [nodes[:2]]
        return []
    if kind == "m":
        return [[node for index, node in enumerate(nodes) if index != 1]]
    return [nodes]


def _summarize(state: _Connectivity, subckt: Subckt) -> _Summary:
    if subckt.name in state.summaries:
        return state.summaries[subckt.name]
    if subckt.name in state.visiting:
        state.findings.append(Finding(
            "subckt-recursion", "error", subckt.line, None,
            f"subcircuit {subckt.name} instantiates itself, directly or through other "
            "subcircuits, so ngspice cannot expand it.",
            "remove the X instance that closes the loop"))
        return _Summary([set(range(len(subckt.pins)))], [1] * len(subckt.pins))

    state.visiting.add(subckt.name)
    graph, terminals, first_line = _build_graph(state, subckt.elements)
    state.visiting.discard(subckt.name)

    pins = [_canonical(pin) for pin in subckt.pins]
    graph.add_nodes_from(pins)
    pin_index = {pin: index for index, pin in enumerate(pins)}
    groups = []
    for component in nx.connected_components(graph):
        endpoints = {pin_index[node] for node in component if node in pin_index}
        endpoints |= {node for node in component if node in state.global_nodes}
        if endpoints:
            groups.append(endpoints)
        else:
            _report_isolated(state, component, first_line,
                             f" inside subcircuit {subckt.name}", "any pin or ground")
    for node, count in terminals.items():
        if count == 1 and node not in pin_index and node not in state.global_nodes:
            _report_floating(state, node, first_line[node], f" in subcircuit {subckt.name}")

    summary = _Summary(groups, [terminals.get(pin, 0) for pin in pins])
    state.summaries[subckt.name] = summary
    return summary


def _build_graph(state: _Connectivity, elements: Iterable[Element]
                 ) -> tuple[nx.Graph, Counter, dict[str, int]]:
    """Build the DC-path graph of one level of the hierarchy.

    Graph nodes are circuit nodes and edges join the nodes that an element
    connects with a DC path. Also returns the number of element terminals
    on each node and the first line that uses it.
    """
    terminals: Counter = Counter()
    first_line: dict[str, int] = {}
    edges = []
    isolated = set()
    for element in elements:
        nodes = [_canonical(node) for node in element.nodes]
        for node in nodes:
            if node not in first_line:
                first_line[node] = element.line
        if element.kind == "x":
            groups = _instance_groups(state, element, nodes, terminals)
        else:
            for node in nodes:
                terminals[node] += 1
            groups = _dc_groups(element, nodes)
        for group in groups:
            if len(group) == 1:
                isolated.add(group[0])
            edges.extend((group[0], other) for other in group[1:])
    graph = nx.Graph()
    graph.add_nodes_from(first_line)
    graph.add_nodes_from(isolated)
    graph.add_edges_from(edges)
    return graph, terminals, first_line


def _instance_groups(state: _Connectivity, element: Element, nodes: list[str],
                     terminals: Counter) -> list[list[str]]:
    name = element.model or ""
    subckt = state.netlist.subckts.get(name) or state.library.get(name)
    if subckt is None:
        state.unknown[name] += 1
        state.unknown_line.setdefault(name, element.line)
        terminals.update(nodes)
        return [nodes]
    if len(nodes) != len(subckt.pins):
        state.pin_mismatch.setdefault(name, []).append(element.line)
        terminals.update(nodes)
        return [nodes]
    summary = _summarize(state, subckt)
    for node, count in zip(nodes, summary.pin_terminals, strict=True):
        terminals[node] += count
    groups = []
    for endpoints in summary.groups:
        group = [nodes[item] if isinstance(item, int) else item for item in endpoints]
        groups.append(group)
    return groups


def _report_floating(state: _Connectivity, node: str, line: int, where: str) -> None:
    if node in state.probed:
        return
    state.findings.append(Finding(
        "floating-node", "warning", line, None,
        f"node {node}{where} has only one element terminal, so nothing flows through "
        "that element.",
        f"connect {node} to the rest of the circuit, or remove the element if it is "
        "left over"))


def _report_isolated(state: _Connectivity, component: set[str], first_line: dict[str, int],
                     where: str, target: str) -> None:
    nodes = sorted(component)
    shown = ", ".join(nodes[:10]) + (f", ... ({len(nodes)} nodes)" if len(nodes) > 10 else "")
    line = min(first_line.get(node, 0) for node in nodes) or None
    state.findings.append(Finding(
        "no-dc-path", "warning", line, None,
        f"node(s) {shown}{where} have no DC path to {target}: they connect only "
        "through capacitors, current sources or controlling inputs, so the DC "
        "operating point is undefined and ngspice reports a singular matrix.",
        "add a DC path, such as a large resistor (1e12) to ground, or "
        "'.options rshunt=1e12' to put one on every node"))


def _check_connectivity(netlist: Netlist, library: dict[str, Subckt]) -> list[Finding]:
    state = _Connectivity(
        netlist=netlist, library=library,
        global_nodes=frozenset({GROUND} | {_canonical(node) for node in netlist.global_nodes}),
        summaries={}, visiting=set(), findings=[], probed=_probed_nodes(netlist),
        unknown=Counter(), unknown_line={}, pin_mismatch={})

    for subckt in netlist.subckts.values():
        _summarize(state, subckt)
    if not netlist.elements:
        # A library file of models and subcircuits: there is no circuit to check.
        return state.findings + _ground_lookalikes(netlist)

    graph, terminals, first_line = _build_graph(state, netlist.elements)
    findings = state.findings
    findings += _ground_lookalikes(netlist)
    if GROUND not in graph:
        findings.append(Finding(
            "no-ground", "error", None, None,
            "no element connects to ground: ngspice 39 treats only node 0 and gnd "
            "(any case) as ground, and without it every node voltage is undefined.",
            "connect the reference node to 0, for example by renaming it to 0"))
    else:
        has_rshunt = any("rshunt" in options.params for options in netlist.options)
        for component in nx.connected_components(graph):
            if GROUND not in component and not has_rshunt:
                _report_isolated(state, component, first_line, "", "ground")
    for node, count in terminals.items():
        if count == 1 and node not in state.global_nodes:
            _report_floating(state, node, first_line[node], "")

    for name, count in state.unknown.items():
        findings.append(Finding(
            "unknown-subckt", "warning", state.unknown_line[name], None,
            f"subcircuit {name} used by {count} X instance(s) is not defined in this "
            "netlist, so its internal connections were not checked.",
            f"define .subckt {name}, or include the file that defines it"))
    for name, lines in state.pin_mismatch.items():
        subckt = netlist.subckts.get(name) or library[name]
        findings.append(Finding(
            "subckt-pins", "error", lines[0], None,
            f"{len(lines)} X instance(s) of subcircuit {name} connect a number of nodes "
            f"other than its {len(subckt.pins)} pins ({' '.join(subckt.pins)}, line "
            f"{subckt.line}), which ngspice rejects.",
            f"connect exactly {len(subckt.pins)} nodes before the subcircuit name"))
    return findings


def _voltage_defined(element: Element) -> bool:
    """Return whether an element fixes the voltage between its first two nodes at DC.

    Voltage sources (V, E, H, and B with V=) do, and so does an inductor,
    which is a short circuit at DC.
    """
    if element.kind in ("v", "e", "h", "l"):
        return True
    return element.kind == "b" and "v" in element.params


def _check_voltage_loops(netlist: Netlist) -> list[Finding]:
    """Find loops of voltage sources and inductors, which leave branch currents undefined."""
    findings = []
    levels = [netlist.elements] + [subckt.elements for subckt in netlist.subckts.values()]
    for elements in levels:
        joined = nx.utils.UnionFind()
        graph = nx.Graph()
        for element in elements:
            if not _voltage_defined(element) or len(element.nodes) < 2:
                continue
            first, second = (_canonical(node) for node in element.nodes[:2])
            if joined[first] == joined[second]:
                findings.append(_voltage_loop_finding(element, graph, first, second))
                continue
            joined.union(first, second)
            graph.add_edge(first, second, element=element.name)
    return findings


def _voltage_loop_finding(element: Element, graph: nx.Graph, first: str,
                          second: str) -> Finding:
    if first == second:
        others = "itself"
    else:
        path = nx.shortest_path(graph, first, second)
        names = [graph.edges[a, b]["element"] for a, b in zip(path, path[1:], strict=False)]
        others = ", ".join(names)
    where = f" in subcircuit {element.subckt}" if element.subckt else ""
    return Finding(
        "voltage-loop", "error", element.line, None,
        f"{element.name}{where} closes a loop of voltage sources and inductors with "
        f"{others}: at DC their branch currents are undefined, and ngspice 39 reports a "
        "singular matrix.",
        f"put a resistor in series with {element.name}, or remove one element of the loop")


def _ground_lookalikes(netlist: Netlist) -> list[Finding]:
    findings = []
    seen: set[str] = set()
    for element in netlist.all_elements():
        for node in element.nodes:
            if node not in seen and _GROUND_LOOKALIKE.match(node):
                seen.add(node)
                findings.append(Finding(
                    "ground-alias", "warning", element.line, None,
                    f"node {node!r} is not ground in ngspice 39: only 0 and gnd are, so "
                    f"{node} is an ordinary node.",
                    f"rename {node} to 0"))
    return findings


def _check_after_end(netlist: Netlist) -> list[Finding]:
    if not netlist.ignored_cards:
        return []
    first = netlist.ignored_cards[0]
    count = len(netlist.ignored_cards)
    return [Finding(
        "after-end", "warning", first.line, 1,
        f"{count} card(s) after .end (line {netlist.end_line}), from line {first.line} "
        "on, are ignored by ngspice; only .control blocks, *# lines and includes there "
        "are still read.",
        "move the cards above .end, or delete them")]
