"""Reader for ngspice netlists, ours or a user's.

:func:`parse_netlist` turns netlist text into frozen dataclasses. Every card
keeps the 1-based number of the physical line where it starts. The rules
follow ngspice 39 (checked with ``ngspice -b``):

- The first line is the title, except in an included file (``title_line=False``).
- A line starting with ``+`` continues the card before it. Full-line comments
  and blank lines between a card and its continuation are allowed.
- ``*`` starts a comment only at the start of a line. A ``*`` later in the
  line stays a token, which ngspice rejects ("unknown parameter (*)").
- End-of-line comments start at ``;``, at ``//``, or at ``$`` preceded by a
  space, tab or comma. Inside ``.control`` only ``$`` followed by a space
  starts a comment, because ``$name`` is a variable there.
- Lines starting with ``*#`` are not comments: ngspice runs them as control
  commands, as it does a file whose title starts with ``*ng_script``.
- ``.end`` ends the circuit, but ngspice still reads ``.control`` blocks,
  ``*#`` lines and ``.include``/``.lib`` cards after it. Other cards after
  ``.end`` are ignored, and are kept in :attr:`Netlist.ignored_cards`.
- Names are case-insensitive: element, node, model and subcircuit names are
  stored in lower case, and the spelling as written is kept beside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from spicecross.errors import NetlistError
from spicecross.units import parse_value

# Node names that ngspice 39 treats as the ground node, after lower-casing.
# Checked with ngspice -b: "0", "gnd" and "GND" are ground, also inside a
# subcircuit. "gnd!", "ground", "00" and "vss" are ordinary nodes.
GROUND_NODES = frozenset({"0", "gnd"})

ANALYSIS_CARDS = frozenset({
    ".op", ".dc", ".ac", ".tran", ".noise", ".tf", ".sens", ".pz", ".disto",
    ".pss", ".sp",
})

# Minimum and maximum node count of the element types whose node count is
# fixed or bounded. X, A, N and P take every token before the model or
# subcircuit name, and K has no nodes.
_NODE_COUNTS = {
    "r": (2, 2), "c": (2, 2), "l": (2, 2), "v": (2, 2), "i": (2, 2),
    "b": (2, 2), "f": (2, 2), "h": (2, 2), "d": (2, 2), "w": (2, 2),
    "q": (3, 5), "j": (3, 3), "z": (3, 3), "u": (3, 3),
    "m": (4, 7), "s": (4, 4), "t": (4, 4), "o": (4, 4), "y": (4, 4),
    "e": (2, 4), "g": (2, 4),
}

# The token after the two output nodes of an E or G source that marks the
# two-node form (an expression, a polynomial, a table or a transfer function).
_CONTROLLED_SOURCE_FORM = re.compile(
    r"^(?:(?:value|vol|cur)(?:=|$)|(?:poly|table|laplace|freq|and|or|nand|nor)(?:[({=]|$))",
    re.IGNORECASE)

# Instance flags that can follow a device model name.
_DEVICE_FLAGS = frozenset({"off", "on"})

# Parameters that may follow the expression of a B source.
_B_TRAILING_PARAM = re.compile(r"\s+(tc1|tc2|temp|dtemp|m)\s*=\s*(\S+)\s*$",
                               re.IGNORECASE)

# Start of an end-of-line comment outside .control.
_EOL_COMMENT = re.compile(r";|//|(?:(?<=[ \t,])|^)\$")
# Start of an end-of-line comment inside .control.
_EOL_COMMENT_CONTROL = re.compile(r";|//|\$(?= )")


# ---------------------------------------------------------------------------
# Data model


@dataclass(frozen=True)
class Segment:
    """Text of one physical line of a card, after comment removal.

    ``column`` is the 1-based column of ``text[0]`` in the physical line, so a
    position in ``text`` maps back to the file.
    """

    line: int
    column: int
    text: str


@dataclass(frozen=True)
class Card:
    """One logical card: a first line and its ``+`` continuation lines joined.

    ``keyword`` is the first token in lower case: an element name or a dot
    card such as ``.param``.
    """

    line: int
    text: str
    segments: tuple[Segment, ...]
    keyword: str


@dataclass(frozen=True)
class Comment:
    """A full-line ``*`` comment, with the whole line as written."""

    line: int
    text: str


@dataclass(frozen=True)
class ControlLine:
    """A line of a ``.control`` block or a ``*#`` command line.

    ``text`` is the line as written and ``command`` the same line without its
    end-of-line comment and outer whitespace.
    """

    line: int
    text: str
    command: str


@dataclass(frozen=True)
class ControlBlock:
    """A ``.control`` … ``.endc`` block, or the body of an ``*ng_script`` file.

    ``line`` is the line of ``.control`` (1 for a script file) and
    ``end_line`` the line of ``.endc`` (the last line for a script file).
    """

    line: int
    end_line: int
    lines: tuple[ControlLine, ...]


@dataclass(frozen=True)
class Element:
    """A circuit element such as ``R1 a b 1k`` or ``X1 a b cell ron=1e4``.

    Names, nodes and the model name are lower case, as ngspice folds them.
    ``raw_name`` and ``raw_nodes`` keep the spelling as written.

    ``value`` is the element value. It is a float where the value is a SPICE
    number: resistance in Ω, capacitance in F, inductance in H, DC value of a
    V or I source in V or A, gain of E/F/G/H, or coupling of K. It is text for
    an expression such as ``{2*r0}``, for the expression of a B source, and
    for a V or I source without a DC value (``SIN(0 1 1k)``). It is ``None``
    when the card has no value. ``value_text`` is the value as written.

    ``model`` is the device model name, or for X the subcircuit name.
    ``controls`` contains the controlling voltage source of F, H and W, or the
    coupled inductors of K. ``params`` maps lower-case parameter names to
    their text as written. ``subckt`` is the name of the enclosing
    subcircuit, ``None`` at top level.
    """

    name: str
    raw_name: str
    kind: str
    nodes: tuple[str, ...]
    raw_nodes: tuple[str, ...]
    value: float | str | None
    value_text: str | None
    model: str | None
    controls: tuple[str, ...]
    params: dict[str, str] = field(hash=False)
    line: int
    subckt: str | None = None

    @property
    def subckt_name(self) -> str | None:
        """Name of the instantiated subcircuit for an X element, else ``None``."""
        return self.model if self.kind == "x" else None


@dataclass(frozen=True)
class SubcktHeader:
    """Name, pins and default parameters of a ``.subckt`` definition.

    ``params`` maps lower-case parameter names to their default as written.
    """

    name: str
    raw_name: str
    pins: tuple[str, ...]
    params: dict[str, str] = field(hash=False)
    line: int


@dataclass(frozen=True)
class Subckt:
    """A ``.subckt`` … ``.ends`` definition with the elements it contains.

    ``parent`` is the enclosing subcircuit for a nested definition.
    """

    name: str
    raw_name: str
    pins: tuple[str, ...]
    raw_pins: tuple[str, ...]
    params: dict[str, str] = field(hash=False)
    line: int
    end_line: int
    elements: tuple[Element, ...]
    parent: str | None = None

    @property
    def header(self) -> SubcktHeader:
        """Name, pins and default parameters of this definition."""
        return SubcktHeader(self.name, self.raw_name, self.pins, self.params, self.line)


@dataclass(frozen=True)
class Param:
    """One assignment of a ``.param`` card.

    ``value`` is the float where the text is a SPICE number, else ``None``.
    """

    name: str
    raw_name: str
    value_text: str
    value: float | None
    line: int
    subckt: str | None = None


@dataclass(frozen=True)
class Include:
    """An ``.include``/``.inc`` card, or an ``.lib FILE SECTION`` card.

    ``kind`` is ``"include"`` or ``"lib"``. ``path`` is the file name as
    written, without quotes, and is not resolved.
    """

    kind: str
    path: str
    section: str | None
    line: int
    subckt: str | None = None


@dataclass(frozen=True)
class Model:
    """A ``.model NAME TYPE (k=v ...)`` card, with ``type`` in lower case."""

    name: str
    raw_name: str
    type: str
    params: dict[str, str] = field(hash=False)
    line: int
    subckt: str | None = None


@dataclass(frozen=True)
class Options:
    """An ``.options`` card: assignments and bare flags such as ``noacct``."""

    params: dict[str, str] = field(hash=False)
    flags: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Analysis:
    """An analysis card such as ``.op`` or ``.tran 1n 1u``, with ``kind`` written without the dot."""

    kind: str
    args: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class FuncDef:
    """A ``.func NAME(ARGS) {BODY}`` card."""

    name: str
    args: tuple[str, ...]
    body: str
    line: int
    subckt: str | None = None


@dataclass(frozen=True)
class DotCard:
    """Any other dot card, such as ``.save`` or ``.ic``, kept as text."""

    keyword: str
    args: str
    line: int
    subckt: str | None = None


@dataclass(frozen=True)
class LibSection:
    """A ``.lib NAME`` … ``.endl`` section of a library file."""

    name: str
    line: int
    end_line: int


@dataclass(frozen=True)
class Netlist:
    """A parsed ngspice netlist.

    ``elements`` contains the top-level elements only. The elements of a
    subcircuit are in ``subckts[name].elements``. ``params``, ``includes``,
    ``models`` and ``functions`` contain the cards of the whole file, each
    with the subcircuit it sits in. ``cards`` contains every logical card in
    file order, ``ignored_cards`` the cards after ``.end`` that ngspice
    ignores. ``shell_cards`` are cards outside ``.control`` whose first word
    is ``shell``. ``hash_commands`` are ``*#`` lines, which ngspice runs as
    control commands. ``is_script`` is true when the title starts with
    ``*ng_script``, in which case the whole file is one control block.
    """

    title: str
    path: Path | None
    elements: tuple[Element, ...]
    subckts: dict[str, Subckt] = field(hash=False)
    params: tuple[Param, ...]
    includes: tuple[Include, ...]
    models: tuple[Model, ...]
    options: tuple[Options, ...]
    analyses: tuple[Analysis, ...]
    functions: tuple[FuncDef, ...]
    controls: tuple[ControlBlock, ...]
    hash_commands: tuple[ControlLine, ...]
    shell_cards: tuple[Card, ...]
    other_cards: tuple[DotCard, ...]
    lib_sections: tuple[LibSection, ...]
    global_nodes: frozenset[str]
    comments: tuple[Comment, ...]
    cards: tuple[Card, ...]
    ignored_cards: tuple[Card, ...]
    end_line: int | None
    line_count: int
    is_script: bool = False

    def all_elements(self):
        """Yield the top-level elements, then the elements of every subcircuit."""
        yield from self.elements
        for subckt in self.subckts.values():
            yield from subckt.elements


# ---------------------------------------------------------------------------
# Splitting text into cards


@dataclass
class _Split:
    title: str
    cards: list[Card] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    controls: list[ControlBlock] = field(default_factory=list)
    hash_commands: list[ControlLine] = field(default_factory=list)
    line_count: int = 0
    is_script: bool = False


def _strip_comment(text: str, *, in_control: bool) -> str:
    if ";" not in text and "/" not in text and "$" not in text:
        return text
    pattern = _EOL_COMMENT_CONTROL if in_control else _EOL_COMMENT
    match = pattern.search(text)
    if match is None:
        return text
    return text[:match.start()]


def _control_line(number: int, text: str) -> ControlLine:
    command = text.strip()
    if command.startswith("*"):
        command = ""
    else:
        command = _strip_comment(command, in_control=True).strip()
    return ControlLine(number, text, command)


def split_cards(text: str, *, title_line: bool = True) -> _Split:
    """Split netlist text into logical cards, comments and control blocks.

    Raises:
        NetlistError: for a ``+`` line with no card before it, a ``.control``
            without ``.endc``, or an ``.endc`` without ``.control``.
    """
    lines = text.splitlines()
    result = _Split(title="")
    result.line_count = len(lines)
    start = 0
    if title_line:
        if not lines:
            raise NetlistError("empty netlist: the first line must be the title, "
                               "followed by the circuit cards")
        result.title = lines[0].strip()
        start = 1
        if result.title.lower().startswith("*ng_script"):
            # ngspice runs such a file as a control script, line by line.
            body = tuple(_control_line(i + 1, lines[i]) for i in range(1, len(lines)))
            result.controls.append(ControlBlock(1, len(lines), body))
            result.is_script = True
            return result

    pending: list[Segment] | None = None
    control_start: int | None = None
    control_lines: list[ControlLine] = []

    def flush() -> None:
        nonlocal pending
        if pending:
            if len(pending) == 1:
                joined = pending[0].text
            else:
                joined = " ".join(segment.text for segment in pending)
            keyword = joined.split(None, 1)[0].lower()
            result.cards.append(Card(pending[0].line, joined, tuple(pending), keyword))
        pending = None

    for index in range(start, len(lines)):
        number = index + 1
        raw = lines[index]
        stripped = raw.strip()

        if control_start is not None:
            if stripped.lower().split(None, 1)[:1] == [".endc"]:
                result.controls.append(ControlBlock(control_start, number,
                                                    tuple(control_lines)))
                control_start = None
                control_lines = []
            else:
                control_lines.append(_control_line(number, raw))
            continue

        if not stripped:
            continue
        if stripped.startswith("*#"):
            result.hash_commands.append(ControlLine(number, raw, stripped[2:].strip()))
            continue
        if stripped.startswith("*"):
            result.comments.append(Comment(number, raw))
            continue

        offset = len(raw) - len(raw.lstrip())
        body = _strip_comment(raw[offset:], in_control=False)
        if not body.strip():
            # Only an end-of-line comment: ngspice treats the line as a comment.
            result.comments.append(Comment(number, raw))
            continue

        if body.startswith("+"):
            if pending is None:
                raise NetlistError(
                    f"line {number}: continuation line (starting with '+') has no card "
                    "before it to continue; join it to a card or remove the '+'")
            content = body[1:]
            lead = len(content) - len(content.lstrip())
            pending.append(Segment(number, offset + 2 + lead, content.strip()))
            continue

        flush()
        if body[0] == ".":
            first = body.split(None, 1)[0].lower()
            if first == ".control":
                control_start = number
                continue
            if first == ".endc":
                raise NetlistError(f"line {number}: .endc without a .control before it; "
                                   "remove it or add the .control line")
        pending = [Segment(number, offset + 1, body.rstrip())]

    flush()
    if control_start is not None:
        raise NetlistError(f"line {control_start}: .control block has no .endc; "
                           "add a line '.endc' after its last command")
    return result


# ---------------------------------------------------------------------------
# Tokens


def _tokenize(text: str) -> list[str]:
    """Split a card into tokens, keeping ``{...}`` and quoted text whole.

    Commas outside braces and quotes separate tokens, as in ngspice.
    ``key = value`` with spaces around ``=`` becomes one ``key=value`` token.
    """
    if "{" not in text and "'" not in text and '"' not in text:
        if "," in text:
            text = text.replace(",", " ")
        tokens = text.split()
        return _merge_assignments(tokens) if "=" in text else tokens

    tokens: list[str] = []
    current: list[str] = []
    depth = 0
    quote = ""
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == "{":
            depth += 1
            current.append(char)
        elif char == "}":
            depth = max(depth - 1, 0)
            current.append(char)
        elif (char.isspace() or char == ",") and depth == 0:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return _merge_assignments(tokens)


def _merge_assignments(tokens: list[str]) -> list[str]:
    if not any(token[0] == "=" or token[-1] == "=" for token in tokens):
        return tokens
    merged: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        has_next = index + 1 < len(tokens)
        if token == "=" and merged and has_next:
            merged[-1] = merged[-1] + "=" + tokens[index + 1]
            index += 2
            continue
        if token.startswith("=") and merged and not _is_quoted(merged[-1]):
            merged[-1] = merged[-1] + token
            if token == "=" and has_next:
                merged[-1] += tokens[index + 1]
                index += 1
            index += 1
            continue
        if token.endswith("=") and not _is_quoted(token) and has_next:
            merged.append(token + tokens[index + 1])
            index += 2
            continue
        merged.append(token)
        index += 1
    return merged


def _is_quoted(token: str) -> bool:
    return token[:1] in ("{", "'", '"')


_ASSIGNMENT = re.compile(r"^([^={}'\"()]+)=(.*)$", re.DOTALL)


def _split_assignment(token: str) -> tuple[str, str] | None:
    """Return ``(key, value)`` for a ``key=value`` token, else ``None``."""
    if _is_quoted(token) or "=" not in token:
        return None
    match = _ASSIGNMENT.match(token)
    if match is None:
        return None
    return match.group(1).strip(), match.group(2).strip()


def _split_positional(tokens: list[str], *, join_bare: bool = False
                      ) -> tuple[list[str], dict[str, str]]:
    """Split tokens into positional ones and ``key=value`` parameters.

    The ``params:`` keyword of subcircuit lines is dropped. With
    ``join_bare``, a bare word after an assignment is appended to that
    assignment's value, which keeps an unbraced ``.param`` expression such as
    ``x = 2 * y`` whole.
    """
    positional: list[str] = []
    params: dict[str, str] = {}
    seen_assignment = False
    for token in tokens:
        if "=" not in token or token[0] in "{'\"":
            pair = None
            if token.lower() == "params:":
                seen_assignment = True
                continue
        else:
            pair = _split_assignment(token)
        if pair is not None:
            params[pair[0].lower()] = pair[1]
            seen_assignment = True
        elif join_bare and seen_assignment and params:
            last = next(reversed(params))
            params[last] = params[last] + " " + token
        else:
            positional.append(token)
    return positional, params


def _number_or_expression(token: str) -> float | str | None:
    """Return the float of a SPICE number, the text of an expression, or ``None``."""
    if _is_quoted(token):
        return token
    try:
        return parse_value(token)
    except ValueError:
        return None


def _strip_quotes(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


# ---------------------------------------------------------------------------
# Elements


def _too_few(card: Card, name: str, needed: str, got: list[str]) -> NetlistError:
    return NetlistError(
        f"line {card.line}: element {name!r} needs {needed}, but the card has "
        f"{len(got)} token(s) after the name: {card.text!r}")


def _parse_element(card: Card, subckt: str | None, model_names: set[str]) -> Element:
    tokens = _tokenize(card.text)
    raw_name = tokens[0]
    kind = raw_name[0].lower()
    if not kind.isalpha():
        raise NetlistError(
            f"line {card.line}: {raw_name!r} is not an element or a dot card: element "
            "names start with a letter (R, C, V, X, ...) and other cards with '.'")
    rest = tokens[1:]

    if kind == "b":
        return _parse_b_source(card, raw_name, rest, subckt)
    if kind in ("e", "g"):
        return _parse_controlled_source(card, raw_name, kind, rest, subckt)
    if kind == "k":
        return _parse_coupling(card, raw_name, rest, subckt)
    if kind in ("x", "a", "n", "p"):
        return _parse_instance(card, raw_name, kind, rest, subckt)

    minimum, maximum = _NODE_COUNTS.get(kind, (2, 2))
    positional, params = _split_positional(rest)
    value: float | str | None = None
    value_text: str | None = None
    model: str | None = None
    controls: tuple[str, ...] = ()

    if kind in ("r", "c", "l"):
        if len(positional) < 2:
            raise _too_few(card, raw_name, "2 nodes and a value", positional)
        nodes = positional[:2]
        for token in positional[2:]:
            parsed = _number_or_expression(token)
            if parsed is not None and value_text is None:
                value, value_text = parsed, token
            elif parsed is None and model is None:
                model = token.lower()
        named = params.get(kind) or params.get(
            {"r": "resistance", "c": "capacitance", "l": "inductance"}[kind])
        if value_text is None and named is not None:
            value, value_text = _number_or_expression(named), named
            if value is None:
                value = named
    elif kind in ("v", "i"):
        if len(positional) < 2:
            raise _too_few(card, raw_name, "2 nodes", positional)
        nodes = positional[:2]
        value, value_text = _source_value(rest[2:])
    elif kind in ("f", "h"):
        if len(positional) < 3:
            raise _too_few(card, raw_name, "2 nodes and a controlling source", positional)
        nodes = positional[:2]
        if positional[2].lower().startswith("poly"):
            value_text = " ".join(rest[2:])
            value = value_text
        else:
            controls = (positional[2].lower(),)
            if len(positional) > 3:
                value_text = positional[3]
                value = _number_or_expression(value_text)
    elif kind == "t":
        if len(positional) < 4:
            raise _too_few(card, raw_name, "4 nodes", positional)
        nodes = positional[:4]
    elif kind == "w":
        if len(positional) < 4:
            raise _too_few(card, raw_name, "2 nodes, a controlling source and a model",
                           positional)
        nodes = positional[:2]
        controls = (positional[2].lower(),)
        model = positional[3].lower()
    else:
        nodes, model, value_text = _nodes_and_model(card, raw_name, positional,
                                                    minimum, maximum, model_names)
        if value_text is not None:
            value = _number_or_expression(value_text)

    return Element(
        name=raw_name.lower(), raw_name=raw_name, kind=kind,
        nodes=tuple(node.lower() for node in nodes), raw_nodes=tuple(nodes),
        value=value, value_text=value_text, model=model, controls=controls,
        params=params, line=card.line, subckt=subckt)


def _source_value(tokens: list[str]) -> tuple[float | str | None, str | None]:
    """Return the DC value of a V or I source, or its whole specification as text."""
    if not tokens:
        return None, None
    first = tokens[0]
    if first.lower() == "dc" and len(tokens) > 1:
        parsed = _number_or_expression(tokens[1])
        return (parsed if parsed is not None else tokens[1]), tokens[1]
    parsed = _number_or_expression(first)
    if parsed is not None:
        return parsed, first
    spec = " ".join(tokens)
    return spec, spec


def _parse_b_source(card: Card, raw_name: str, rest: list[str],
                    subckt: str | None) -> Element:
    parts = card.text.split(None, 3)
    if len(parts) < 4:
        raise _too_few(card, raw_name, "2 nodes and V=expression or I=expression", rest)
    expression_text = parts[3]
    match = re.match(r"([vi])\s*=\s*(.*)$", expression_text, re.IGNORECASE | re.DOTALL)
    if match is None:
        raise NetlistError(
            f"line {card.line}: B source {raw_name!r} needs V=expression or "
            f"I=expression after its two nodes, got {expression_text!r}")
    key = match.group(1).lower()
    expression = match.group(2).strip()
    params: dict[str, str] = {}
    trailing = _B_TRAILING_PARAM.search(expression)
    while trailing is not None:
        params[trailing.group(1).lower()] = trailing.group(2)
        expression = expression[:trailing.start()].rstrip()
        trailing = _B_TRAILING_PARAM.search(expression)
    params = {key: expression, **dict(reversed(list(params.items())))}
    nodes = parts[1:3]
    return Element(
        name=raw_name.lower(), raw_name=raw_name, kind="b",
        nodes=tuple(node.lower() for node in nodes), raw_nodes=tuple(nodes),
        value=expression, value_text=expression_text, model=None, controls=(),
        params=params, line=card.line, subckt=subckt)


def _parse_controlled_source(card: Card, raw_name: str, kind: str, rest: list[str],
                             subckt: str | None) -> Element:
    if len(rest) < 3:
        raise _too_few(card, raw_name, "2 output nodes and a gain or expression", rest)
    if _CONTROLLED_SOURCE_FORM.match(rest[2]):
        # Two-node form: E1 out 0 value={...}, poly(2) ..., table {...} = ...
        nodes = rest[:2]
        value_text = card.text.split(None, 3)[3]
        value: float | str | None = value_text
        positional, params = _split_positional(rest[2:])
        if "value" in params:
            value = params["value"]
    else:
        positional, params = _split_positional(rest)
        if len(positional) < 4:
            raise _too_few(card, raw_name, "4 nodes (output and controlling pair)",
                           positional)
        nodes = positional[:4]
        value_text = positional[4] if len(positional) > 4 else None
        value = _number_or_expression(value_text) if value_text else None
    return Element(
        name=raw_name.lower(), raw_name=raw_name, kind=kind,
        nodes=tuple(node.lower() for node in nodes), raw_nodes=tuple(nodes),
        value=value, value_text=value_text, model=None, controls=(),
        params=params, line=card.line, subckt=subckt)


def _parse_coupling(card: Card, raw_name: str, rest: list[str],
                    subckt: str | None) -> Element:
    positional, params = _split_positional(rest)
    if len(positional) < 3:
        raise _too_few(card, raw_name, "2 inductor names and a coupling factor",
                       positional)
    value_text = positional[-1]
    return Element(
        name=raw_name.lower(), raw_name=raw_name, kind="k", nodes=(), raw_nodes=(),
        value=_number_or_expression(value_text), value_text=value_text, model=None,
        controls=tuple(token.lower() for token in positional[:-1]),
        params=params, line=card.line, subckt=subckt)


def _parse_instance(card: Card, raw_name: str, kind: str, rest: list[str],
                    subckt: str | None) -> Element:
    positional, params = _split_positional(rest)
    if kind == "a":
        # XSPICE: vector brackets and port modifiers such as %v or ~ are not nodes.
        positional = [token.strip("[]~") for token in positional
                      if token.strip("[]") and not token.startswith("%")]
        positional = [token for token in positional if token.lower() != "null"]
    if not positional:
        what = "a subcircuit name" if kind == "x" else "a model name"
        raise _too_few(card, raw_name, what, positional)
    nodes = positional[:-1]
    model = positional[-1].lower()
    return Element(
        name=raw_name.lower(), raw_name=raw_name, kind=kind,
        nodes=tuple(node.lower() for node in nodes), raw_nodes=tuple(nodes),
        value=None, value_text=None, model=model, controls=(), params=params,
        line=card.line, subckt=subckt)


def _nodes_and_model(card: Card, raw_name: str, positional: list[str], minimum: int,
                     maximum: int, model_names: set[str]
                     ) -> tuple[list[str], str | None, str | None]:
    """Split the tokens of a device card into nodes, model name and area value.

    A token that names a ``.model`` of this file marks the model. Without one,
    the model is the last token that is not a number or an on/off flag.
    """
    if len(positional) < minimum + 1:
        raise _too_few(card, raw_name, f"{minimum} nodes and a model name", positional)
    upper = min(maximum, len(positional) - 1)
    for index in range(minimum, upper + 1):
        if positional[index].lower() in model_names:
            return positional[:index], positional[index].lower(), _area(positional[index + 1:])

    candidates = list(positional)
    while len(candidates) > minimum + 1 and (
            candidates[-1].lower() in _DEVICE_FLAGS
            or _number_or_expression(candidates[-1]) is not None):
        candidates.pop()
    index = min(max(len(candidates) - 1, minimum), maximum)
    return positional[:index], positional[index].lower(), _area(positional[index + 1:])


def _area(tokens: list[str]) -> str | None:
    """Return the first token after a model name that is not an on/off flag."""
    for token in tokens:
        if token.lower() not in _DEVICE_FLAGS:
            return token
    return None


# ---------------------------------------------------------------------------
# Dot cards


def _parse_subckt_header(card: Card) -> tuple[SubcktHeader, tuple[str, ...]]:
    tokens = _tokenize(card.text)
    if len(tokens) < 2:
        raise NetlistError(f"line {card.line}: .subckt needs a name and its pins, "
                           f"such as '.subckt cell top bottom'; got {card.text!r}")
    raw_name = tokens[1]
    raw_pins, params = _split_positional(tokens[2:])
    header = SubcktHeader(
        name=raw_name.lower(), raw_name=raw_name,
        pins=tuple(pin.lower() for pin in raw_pins), params=params, line=card.line)
    return header, tuple(raw_pins)


def _parse_params(card: Card, subckt: str | None) -> list[Param]:
    tokens = _tokenize(card.text)[1:]
    positional, params = _split_positional(tokens, join_bare=True)
    if positional:
        raise NetlistError(
            f"line {card.line}: .param expects name=value assignments, but "
            f"{positional[0]!r} has no '='; write it as {positional[0]}=VALUE")
    result = []
    raw_names = {}
    for token in tokens:
        pair = _split_assignment(token)
        if pair is not None:
            raw_names[pair[0].lower()] = pair[0]
    for name, text in params.items():
        parsed = _number_or_expression(text)
        value = parsed if isinstance(parsed, float) else None
        result.append(Param(name, raw_names.get(name, name), text, value, card.line, subckt))
    return result


def _parse_model(card: Card, subckt: str | None) -> Model:
    parts = card.text.split(None, 2)
    if len(parts) < 3:
        raise NetlistError(f"line {card.line}: .model needs a name and a type, such as "
                           f"'.model dmod D(is=1e-14)'; got {card.text!r}")
    raw_name = parts[1]
    body = parts[2].strip()
    match = re.match(r"([A-Za-z_][\w.]*)\s*(.*)$", body, re.DOTALL)
    if match is None:
        raise NetlistError(f"line {card.line}: .model {raw_name} has no valid type "
                           f"name, got {body!r}")
    model_type = match.group(1).lower()
    inner = match.group(2).strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    inner = inner.replace(",", " ")
    _, params = _split_positional(_tokenize(inner))
    return Model(raw_name.lower(), raw_name, model_type, params, card.line, subckt)


def _parse_include(card: Card, keyword: str, subckt: str | None) -> Include | str:
    """Return an :class:`Include`, or the section name of a ``.lib NAME`` section start."""
    tokens = _tokenize(card.text)[1:]
    if not tokens:
        raise NetlistError(f"line {card.line}: {keyword} needs a file name, such as "
                           f"'{keyword} models.lib'")
    path = _strip_quotes(tokens[0])
    if keyword == ".lib":
        if len(tokens) == 1:
            return path
        return Include("lib", path, tokens[1].lower(), card.line, subckt)
    return Include("include", path, None, card.line, subckt)


def _parse_func(card: Card, subckt: str | None) -> FuncDef:
    parts = card.text.split(None, 1)
    body = parts[1] if len(parts) > 1 else ""
    match = re.match(r"\s*([A-Za-z_]\w*)\s*\(([^)]*)\)\s*=?\s*(.*)$", body, re.DOTALL)
    if match is None:
        raise NetlistError(f"line {card.line}: .func needs NAME(ARGS) {{BODY}}, such "
                           f"as '.func sq(x) {{x*x}}'; got {card.text!r}")
    args = tuple(arg.strip().lower() for arg in match.group(2).split(",") if arg.strip())
    return FuncDef(match.group(1).lower(), args, match.group(3).strip(), card.line, subckt)


def _parse_options(card: Card) -> Options:
    positional, params = _split_positional(_tokenize(card.text)[1:])
    return Options(params, tuple(token.lower() for token in positional), card.line)


# ---------------------------------------------------------------------------
# Building the netlist


@dataclass
class _OpenSubckt:
    header: SubcktHeader
    raw_pins: tuple[str, ...]
    parent: str | None
    elements: list[Element] = field(default_factory=list)


@dataclass
class _Builder:
    elements: list[Element] = field(default_factory=list)
    subckts: dict[str, Subckt] = field(default_factory=dict)
    params: list[Param] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    models: list[Model] = field(default_factory=list)
    options: list[Options] = field(default_factory=list)
    analyses: list[Analysis] = field(default_factory=list)
    functions: list[FuncDef] = field(default_factory=list)
    shell_cards: list[Card] = field(default_factory=list)
    other_cards: list[DotCard] = field(default_factory=list)
    lib_sections: list[LibSection] = field(default_factory=list)
    global_nodes: set[str] = field(default_factory=set)
    ignored_cards: list[Card] = field(default_factory=list)
    stack: list[_OpenSubckt] = field(default_factory=list)
    open_section: tuple[str, int] | None = None
    end_line: int | None = None

    @property
    def scope(self) -> str | None:
        return self.stack[-1].header.name if self.stack else None


def _collect_model_names(cards: list[Card]) -> set[str]:
    names = set()
    for card in cards:
        if card.keyword == ".model":
            parts = card.text.split(None, 2)
            if len(parts) > 1:
                names.add(parts[1].lower())
    return names


def _add_card(builder: _Builder, card: Card, model_names: set[str]) -> None:
    keyword = card.keyword
    scope = builder.scope

    if builder.end_line is not None:
        # After .end ngspice still reads includes, and ignores other cards.
        # Control blocks and *# lines were split off before this point.
        if keyword in (".include", ".inc", ".lib"):
            parsed = _parse_include(card, keyword if keyword != ".inc" else ".include", None)
            if isinstance(parsed, Include):
                builder.includes.append(parsed)
                return
        if keyword == "shell":
            builder.shell_cards.append(card)
            return
        builder.ignored_cards.append(card)
        return

    if keyword == "shell":
        builder.shell_cards.append(card)
        return
    if not keyword.startswith("."):
        element = _parse_element(card, scope, model_names)
        if builder.stack:
            builder.stack[-1].elements.append(element)
        else:
            builder.elements.append(element)
        return

    if keyword == ".subckt":
        header, raw_pins = _parse_subckt_header(card)
        builder.stack.append(_OpenSubckt(header, raw_pins, scope))
    elif keyword == ".ends":
        _close_subckt(builder, card)
    elif keyword == ".end":
        if builder.stack:
            open_subckt = builder.stack[-1].header
            raise NetlistError(
                f"line {card.line}: .end inside .subckt {open_subckt.raw_name} (opened "
                f"at line {open_subckt.line}); add '.ends' before '.end'")
        builder.end_line = card.line
    elif keyword == ".param":
        builder.params.extend(_parse_params(card, scope))
    elif keyword in (".include", ".inc", ".lib"):
        parsed = _parse_include(card, ".include" if keyword == ".inc" else keyword, scope)
        if isinstance(parsed, Include):
            builder.includes.append(parsed)
        else:
            # NOTE: cards inside a library section are read as if they stood
            # outside it, because ngspice loads a section only when a .lib
            # card elsewhere names it.
            builder.open_section = (parsed.lower(), card.line)
    elif keyword == ".endl":
        if builder.open_section is not None:
            name, start = builder.open_section
            builder.lib_sections.append(LibSection(name, start, card.line))
            builder.open_section = None
        else:
            builder.other_cards.append(DotCard(keyword, "", card.line, scope))
    elif keyword == ".model":
        builder.models.append(_parse_model(card, scope))
    elif keyword in (".options", ".option", ".opt"):
        builder.options.append(_parse_options(card))
    elif keyword in ANALYSIS_CARDS:
        builder.analyses.append(Analysis(keyword[1:], tuple(_tokenize(card.text)[1:]),
                                         card.line))
    elif keyword == ".func":
        builder.functions.append(_parse_func(card, scope))
    elif keyword == ".global":
        builder.global_nodes.update(token.lower() for token in card.text.split()[1:])
    else:
        parts = card.text.split(None, 1)
        args = parts[1] if len(parts) > 1 else ""
        builder.other_cards.append(DotCard(keyword, args, card.line, scope))


def _close_subckt(builder: _Builder, card: Card) -> None:
    if not builder.stack:
        raise NetlistError(f"line {card.line}: .ends without a .subckt before it; "
                           "remove it or add the .subckt header")
    closing = builder.stack.pop()
    header = closing.header
    if header.name in builder.subckts:
        first = builder.subckts[header.name].line
        raise NetlistError(
            f"line {header.line}: subcircuit {header.raw_name!r} is already defined "
            f"at line {first}; rename one of the two definitions")
    builder.subckts[header.name] = Subckt(
        name=header.name, raw_name=header.raw_name, pins=header.pins,
        raw_pins=closing.raw_pins, params=header.params, line=header.line,
        end_line=card.line, elements=tuple(closing.elements), parent=closing.parent)


def parse_netlist(text: str, *, path: str | Path | None = None,
                  title_line: bool = True) -> Netlist:
    """Parse ngspice netlist text into a :class:`Netlist`.

    ``path`` is only recorded, for messages and for resolving includes later.
    Set ``title_line=False`` for a file pulled in by ``.include`` or ``.lib``,
    whose first line is a card, not a title.

    Raises:
        NetlistError: with the line number and the fix. Raised for a
            ``.subckt`` without ``.ends``, an ``.ends`` or ``.endc`` without
            its opening card, a ``.control`` without ``.endc``, and a
            continuation line with nothing to continue. Also raised for a
            duplicate subcircuit and an element with fewer tokens than its
            type needs.
    """
    split = split_cards(text, title_line=title_line)
    model_names = _collect_model_names(split.cards)
    builder = _Builder()
    for card in split.cards:
        _add_card(builder, card, model_names)

    if builder.stack:
        open_subckt = builder.stack[-1].header
        raise NetlistError(
            f"line {open_subckt.line}: .subckt {open_subckt.raw_name} has no matching "
            f".ends; add '.ends {open_subckt.raw_name}' after its last element")
    if builder.open_section is not None:
        name, start = builder.open_section
        builder.lib_sections.append(LibSection(name, start, split.line_count))

    return Netlist(
        title=split.title,
        path=Path(path) if path is not None else None,
        elements=tuple(builder.elements),
        subckts=builder.subckts,
        params=tuple(builder.params),
        includes=tuple(builder.includes),
        models=tuple(builder.models),
        options=tuple(builder.options),
        analyses=tuple(builder.analyses),
        functions=tuple(builder.functions),
        controls=tuple(split.controls),
        hash_commands=tuple(split.hash_commands),
        shell_cards=tuple(builder.shell_cards),
        other_cards=tuple(builder.other_cards),
        lib_sections=tuple(builder.lib_sections),
        global_nodes=frozenset(builder.global_nodes),
        comments=tuple(split.comments),
        cards=tuple(split.cards),
        ignored_cards=tuple(builder.ignored_cards),
        end_line=builder.end_line,
        line_count=split.line_count,
        is_script=split.is_script,
    )


def read_subckt_header(text: str) -> list[SubcktHeader]:
    """Read the name, pins and default parameters of each top-level ``.subckt`` in a file.

    The file may start with a title or a card, and only ``.subckt`` and
    ``.ends`` cards are read, so elements that this parser does not know
    cannot break the scan. Subcircuits nested inside another one are local to
    it and are not returned.

    Raises:
        NetlistError: for a ``.subckt`` without ``.ends``, an ``.ends``
            without ``.subckt``, or a ``.subckt`` card without a name.
    """
    split = split_cards(text, title_line=False)
    headers: list[SubcktHeader] = []
    open_headers: list[SubcktHeader] = []
    for card in split.cards:
        keyword = card.keyword
        if keyword == ".subckt":
            header, _ = _parse_subckt_header(card)
            open_headers.append(header)
        elif keyword == ".ends":
            if not open_headers:
                raise NetlistError(f"line {card.line}: .ends without a .subckt before "
                                   "it; remove it or add the .subckt header")
            header = open_headers.pop()
            if not open_headers:
                headers.append(header)
    if open_headers:
        header = open_headers[-1]
        raise NetlistError(f"line {header.line}: .subckt {header.raw_name} has no matching "
                           f".ends; add '.ends {header.raw_name}' after its last element")
    return headers
