"""Inspection of a netlist without running it: contents, connectivity, lint and safety.

:func:`inspect_netlist` reads a netlist file or text and returns an
:class:`InspectionReport`. Nothing is run and the report never raises for
unsafe cards: they appear as findings, and only running a netlist rejects it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import networkx as nx

from spicecross.netlist.lint import GROUND, Finding, lint_netlist
from spicecross.netlist.parse import GROUND_NODES, Element, Netlist, Subckt, parse_netlist
from spicecross.netlist.safety import OPT_IN, SafetyIssue, scan_netlist

#: Marker of the one-line JSON header of the netlists that spicecross writes.
CROSSBAR_HEADER_MARKER = "spicecross-crossbar:"
#: Keys that the crossbar header must contain.
CROSSBAR_HEADER_KEYS = ("rows", "cols", "r_word_ohm", "r_bit_ohm", "r_source_ohm",
                        "r_sense_ohm", "device", "n_vectors")

_HEADER = re.compile(r"^\s*\*\s*spicecross-crossbar:\s*(.*)$")
# Crosspoint node names of spicecross netlists, with 0-based row and column.
_CROSSPOINT_NODE = re.compile(r"^(?:wl|bl)_r(\d+)_c(\d+)$")


@dataclass(frozen=True)
class InspectionReport:
    """Contents of a netlist, with the findings of lint and of the safety check.

    Counts are by element type letter (upper case). ``expanded_*`` counts
    include the contents of subcircuit instances, recursively. Node counts
    include ground, with ``gnd`` counted as ``0``. ``nodes`` is the sorted
    top-level node list, or ``None`` when there are more than the limit
    given to :func:`inspect_netlist`. ``geometry`` is the parsed
    ``* spicecross-crossbar: {JSON}`` header, or ``None`` without one.
    ``inferred_geometry`` contains rows and cols read from ``wl_r{i}_c{j}``
    and ``bl_r{i}_c{j}`` node names, or is ``None``. ``graph`` has the
    top-level circuit nodes as vertices and one edge per element from its
    first node to each other node, keyed by element name. It and ``netlist``,
    the parsed netlist, are left out of :meth:`to_dict`.
    """

    source: str
    title: str
    line_count: int
    element_counts: dict[str, int]
    expanded_element_counts: dict[str, int]
    node_count: int
    expanded_node_count: int
    nodes: list[str] | None
    subckts: list[dict]
    subckt_instances: dict[str, int]
    params: dict[str, str]
    includes: list[dict]
    analyses: list[dict]
    options: dict[str, str]
    geometry: dict | None
    inferred_geometry: dict | None
    safety_issues: list[SafetyIssue]
    findings: list[Finding]
    netlist: Netlist | None = field(default=None, repr=False, compare=False)

    @cached_property
    def graph(self) -> nx.MultiGraph:
        """Top-level connectivity: circuit nodes, and one edge per element terminal pair.

        Each element adds an edge from its first node to each other node, keyed
        by element name, with its type letter (``kind``) and ``line``. Built on
        first access, because it takes about a second at 128×128.
        """
        if self.netlist is None:
            return nx.MultiGraph()
        return _build_graph(self.netlist)

    @property
    def safe(self) -> bool:
        """True when the safety check found nothing to reject."""
        return not self.safety_issues

    @property
    def errors(self) -> list[Finding]:
        """Findings of severity ``error``."""
        return [finding for finding in self.findings if finding.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings of severity ``warning``."""
        return [finding for finding in self.findings if finding.severity == "warning"]

    def to_dict(self) -> dict:
        """Return the report as a JSON-ready dict with stable keys."""
        return {
            "source": self.source,
            "title": self.title,
            "line_count": self.line_count,
            "element_counts": dict(self.element_counts),
            "expanded_element_counts": dict(self.expanded_element_counts),
            "node_count": self.node_count,
            "expanded_node_count": self.expanded_node_count,
            "nodes": list(self.nodes) if self.nodes is not None else None,
            "subckts": [dict(item) for item in self.subckts],
            "subckt_instances": dict(self.subckt_instances),
            "params": dict(self.params),
            "includes": [dict(item) for item in self.includes],
            "analyses": [dict(item) for item in self.analyses],
            "options": dict(self.options),
            "geometry": self.geometry,
            "inferred_geometry": self.inferred_geometry,
            "safety": {"safe": self.safe,
                       "issues": [issue.to_dict() for issue in self.safety_issues]},
            "findings": [finding.to_dict() for finding in self.findings],
        }

    def format_text(self) -> str:
        """Return a readable multi-line summary of the report."""
        lines = [f"netlist: {self.source}", f"title: {self.title}",
                 f"lines: {self.line_count}"]
        lines.append(f"elements: {sum(self.element_counts.values())} "
                     f"({_format_counts(self.element_counts)})")
        if self.expanded_element_counts != self.element_counts:
            lines.append(f"elements with subcircuits expanded: "
                         f"{sum(self.expanded_element_counts.values())} "
                         f"({_format_counts(self.expanded_element_counts)})")
        node_text = f"nodes: {self.node_count} including ground"
        if self.expanded_node_count != self.node_count:
            node_text += f", {self.expanded_node_count} with subcircuits expanded"
        lines.append(node_text)
        if self.nodes is not None:
            lines.append("  " + " ".join(self.nodes))

        if self.subckts:
            lines.append("subcircuits defined:")
            for item in self.subckts:
                lines.append(f"  {item['name']} ({' '.join(item['pins'])}), line "
                             f"{item['line']}, {item['elements']} element(s), "
                             f"{item['instances']} instance(s)")
        undefined = {name: count for name, count in self.subckt_instances.items()
                     if name not in {item["name"] for item in self.subckts}}
        for name, count in undefined.items():
            lines.append(f"subcircuit used but not defined here: {name} "
                         f"({count} instance(s))")
        if self.params:
            lines.append("params: " + ", ".join(f"{key}={value}"
                                                for key, value in self.params.items()))
        for item in self.includes:
            section = f" section {item['section']}" if item["section"] else ""
            lines.append(f"{item['kind']}: {item['path']}{section} (line {item['line']})")
        for item in self.analyses:
            lines.append(f"analysis: .{item['kind']} {' '.join(item['args'])} "
                         f"(line {item['line']})".replace("  (", " ("))
        lines += self._format_geometry()

        if self.safe:
            lines.append("safety: nothing to reject")
        else:
            lines.append(f"safety: {len(self.safety_issues)} issue(s); running it needs "
                         "--allow-unsafe (allow_unsafe=True)")
        lines.append(f"findings: {len(self.errors)} error(s), {len(self.warnings)} "
                     "warning(s)")
        lines += [f"  {finding.format()}" for finding in self.findings]
        return "\n".join(lines)

    def _format_geometry(self) -> list[str]:
        if self.geometry is not None:
            geometry = self.geometry
            details = ", ".join(f"{key}={geometry[key]}" for key in CROSSBAR_HEADER_KEYS[2:]
                                if key in geometry)
            return [f"crossbar: {geometry.get('rows')}x{geometry.get('cols')}, {details}"]
        if self.inferred_geometry is not None:
            return [f"crossbar (from node names): {self.inferred_geometry['rows']}x"
                    f"{self.inferred_geometry['cols']}"]
        return ["crossbar: none (no spicecross-crossbar header)"]


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in counts.items()) or "none"


def inspect_netlist(source: str | Path, *, allow_unsafe: bool = False,
                    allowed_dirs: Iterable[str | Path] = (),
                    netlist_dir: str | Path | None = None,
                    node_list_limit: int = 200) -> InspectionReport:
    """Read a netlist and report its contents, lint findings and safety issues.

    ``source`` is a file path (a :class:`~pathlib.Path`, or a string without
    a newline) or netlist text (a string with at least one newline).
    ``netlist_dir`` is the folder that relative includes resolve against. It
    defaults to the folder of the file, or the working directory for text.
    Included files inside ``netlist_dir`` and ``allowed_dirs`` are read to
    find the subcircuits they define. ``allow_unsafe=True`` also reads those
    outside, and lists safety issues as warnings instead of errors.

    Raises:
        FileNotFoundError: if ``source`` is a path that does not exist.
        NetlistError: if the netlist cannot be parsed.
    """
    text, path = _read_source(source)
    netlist = parse_netlist(text, path=path)
    if netlist_dir is None:
        netlist_dir = path.parent if path is not None else Path.cwd()

    scan = scan_netlist(netlist, netlist_dir=netlist_dir, allowed_dirs=allowed_dirs,
                        read_outside=allow_unsafe)
    library: dict[str, Subckt] = {}
    for included in scan.included:
        for name, subckt in included.netlist.subckts.items():
            library.setdefault(name, subckt)

    findings = _safety_findings(scan.issues, allow_unsafe)
    findings += lint_netlist(netlist, library=library)
    geometry, header_findings = _read_geometry(netlist)
    findings += header_findings
    findings.sort(key=lambda item: (item.line or 0, item.column or 0, item.code))

    counter = _ExpansionCounter(netlist, library)
    top_nodes = _top_level_nodes(netlist)
    instances = Counter(element.model for element in netlist.all_elements()
                        if element.kind == "x")
    expanded_counts, internal_nodes = counter.expand_top_level()

    return InspectionReport(
        source=str(path) if path is not None else "<netlist text>",
        title=netlist.title,
        line_count=netlist.line_count,
        element_counts=_sorted_counts(Counter(element.kind.upper()
                                              for element in netlist.elements)),
        expanded_element_counts=_sorted_counts(expanded_counts),
        node_count=len(top_nodes),
        expanded_node_count=len(top_nodes) + internal_nodes,
        nodes=sorted(top_nodes) if len(top_nodes) <= node_list_limit else None,
        subckts=[_describe_subckt(subckt, instances) for subckt in netlist.subckts.values()],
        subckt_instances=dict(sorted(instances.items())),
        params={param.name: param.value_text for param in netlist.params},
        includes=[{"kind": include.kind, "path": include.path, "section": include.section,
                   "line": include.line} for include in netlist.includes],
        analyses=[{"kind": analysis.kind, "args": list(analysis.args), "line": analysis.line}
                  for analysis in netlist.analyses],
        options={key: value for options in netlist.options
                 for key, value in options.params.items()},
        geometry=geometry,
        inferred_geometry=_infer_geometry(top_nodes),
        safety_issues=list(scan.issues),
        findings=findings,
        netlist=netlist,
    )


def _read_source(source: str | Path) -> tuple[str, Path | None]:
    if isinstance(source, str) and "\n" in source:
        return source, None
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"netlist file {str(path)!r} not found: give the path of an existing netlist "
            "file, or pass the netlist text itself (text with at least one newline)")
    return path.read_text(errors="replace"), path


def _safety_findings(issues: Iterable[SafetyIssue], allow_unsafe: bool) -> list[Finding]:
    severity = "warning" if allow_unsafe else "error"
    fix = ("remove the card, or run the netlist only if you trust it: "
           f"{OPT_IN}")
    findings = []
    for issue in issues:
        if issue.include_line is None:
            findings.append(Finding(issue.code, severity, issue.line, None,
                                    f"unsafe card: {issue.message}.", fix))
        else:
            findings.append(Finding(issue.code, severity, issue.include_line, None,
                                    f"unsafe card in included file {issue.path}, line "
                                    f"{issue.line}: {issue.message}.", fix))
    return findings


def _read_geometry(netlist: Netlist) -> tuple[dict | None, list[Finding]]:
    for comment in netlist.comments:
        match = _HEADER.match(comment.text)
        if match is None:
            continue
        try:
            geometry = json.loads(match.group(1))
        except json.JSONDecodeError as error:
            return None, [Finding(
                "crossbar-header", "error", comment.line, None,
                f"the spicecross-crossbar header is not valid JSON: {error}.",
                "regenerate the netlist with 'spicecross netlist generate', or remove the "
                "header line")]
        if not isinstance(geometry, dict):
            return None, [Finding(
                "crossbar-header", "error", comment.line, None,
                f"the spicecross-crossbar header is a JSON {type(geometry).__name__}, "
                "not an object.",
                "regenerate the netlist, or remove the header line")]
        missing = [key for key in CROSSBAR_HEADER_KEYS if key not in geometry]
        if missing:
            return geometry, [Finding(
                "crossbar-header", "warning", comment.line, None,
                f"the spicecross-crossbar header lacks {', '.join(missing)}.",
                "regenerate the netlist with the current spicecross")]
        return geometry, []
    return None, []


def _top_level_nodes(netlist: Netlist) -> set[str]:
    nodes = set()
    for element in netlist.elements:
        nodes.update(GROUND if node in GROUND_NODES else node for node in element.nodes)
    return nodes


def _infer_geometry(nodes: Iterable[str]) -> dict | None:
    max_row = max_col = -1
    for node in nodes:
        match = _CROSSPOINT_NODE.match(node)
        if match is not None:
            max_row = max(max_row, int(match.group(1)))
            max_col = max(max_col, int(match.group(2)))
    if max_row < 0:
        return None
    return {"rows": max_row + 1, "cols": max_col + 1}


def _sorted_counts(counts: Counter) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _describe_subckt(subckt: Subckt, instances: Counter) -> dict:
    return {"name": subckt.name, "pins": list(subckt.pins), "params": dict(subckt.params),
            "line": subckt.line, "elements": len(subckt.elements),
            "instances": instances.get(subckt.name, 0)}


@dataclass
class _ExpansionCounter:
    """Element and node counter that expands every subcircuit instance.

    Each definition is counted once and multiplied by its instances, so the
    cost does not grow with the number of instances. An instance of an
    undefined or self-instantiating subcircuit counts as one X element.
    """

    netlist: Netlist
    library: dict[str, Subckt]
    memo: dict[str, tuple[Counter, int]] = field(default_factory=dict)
    visiting: set[str] = field(default_factory=set)

    def expand_top_level(self) -> tuple[Counter, int]:
        return self._expand(self.netlist.elements, pins=())

    def _expand(self, elements: Iterable[Element], pins: Iterable[str]) -> tuple[Counter, int]:
        counts: Counter = Counter()
        internal = 0
        local_nodes: set[str] = set()
        for element in elements:
            local_nodes.update(element.nodes)
            child = self._lookup(element) if element.kind == "x" else None
            if child is None:
                counts[element.kind.upper()] += 1
                continue
            child_counts, child_internal = self._expand_subckt(child)
            counts.update(child_counts)
            internal += child_internal
        if pins:
            outside = set(pins) | GROUND_NODES | self.netlist.global_nodes
            internal += len(local_nodes - outside)
        return counts, internal

    def _lookup(self, element: Element) -> Subckt | None:
        name = element.model or ""
        subckt = self.netlist.subckts.get(name) or self.library.get(name)
        if subckt is None or name in self.visiting:
            return None
        return subckt

    def _expand_subckt(self, subckt: Subckt) -> tuple[Counter, int]:
        if subckt.name not in self.memo:
            self.visiting.add(subckt.name)
            self.memo[subckt.name] = self._expand(subckt.elements, subckt.pins)
            self.visiting.discard(subckt.name)
        return self.memo[subckt.name]


def _build_graph(netlist: Netlist) -> nx.MultiGraph:
    graph = nx.MultiGraph()
    edges = []
    for element in netlist.elements:
        nodes = [GROUND if node in GROUND_NODES else node for node in element.nodes]
        if not nodes:
            continue
        graph.add_node(nodes[0])
        attributes = {"kind": element.kind, "line": element.line}
        edges.extend((nodes[0], other, element.name, attributes) for other in nodes[1:])
    graph.add_edges_from(edges)
    return graph
