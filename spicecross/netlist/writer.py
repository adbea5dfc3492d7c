"""Writing crossbar netlists for ngspice.

``format_*`` functions return text and have no side effects; ``write_*`` functions
write files, atomically (a failed write leaves no partial file).

A netlist applies a batch of input vectors in one ngspice run: a dummy source
``vsweep`` is swept over 0, 1, …, batch − 1 by a ``.dc`` card, and every word-line
driver is a B source whose voltage is ``pwl(v(sweep), 0, v0, 1, v1, …)``. ngspice
orders the circuit matrix once for the whole batch, which is much cheaper than
one ``.op`` per vector. Values are written as plain exponent floats, so a value
never depends on SPICE's scale suffixes (``M`` is milli in SPICE).

The devices come first, in nested-dissection order of their crosspoints (see
:func:`device_order`). ngspice numbers the nodes in the order the netlist names
them, and its sparse solver (Sparse 1.3 in ngspice 39, a Markowitz ordering)
breaks ties by that numbering. Eliminating each half of the array before the
line that separates the halves leaves less fill-in. With ngspice 39 on a 64×64
sinh-law crossbar, this order cut the fill-in from 302,000 to 243,000 entries
and each LU factorization from 0.092 s to 0.052 s. A 3-vector sweep of a
128×128 crossbar took 54 s instead of 92 s (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spicecross.crossbar.spec import CrossbarSpec, check_voltages
from spicecross.crossbar.topology import GROUND, CrossbarTopology, build_topology
from spicecross.units import format_value

#: ngspice options written into every crossbar netlist. With them ngspice agrees
#: with the exact solver to about 1e-9 relative (checked by the integration tests).
DEFAULT_OPTIONS = {"reltol": 1e-9, "abstol": 1e-15, "vntol": 1e-12}
#: Marker of the one-line JSON header that ``netlist inspect`` reads back.
HEADER_MARKER = "* spicecross-crossbar: "
_MAX_LINE = 200


@dataclass(frozen=True)
class CrossbarNetlist:
    """A crossbar netlist and what is needed to read its results.

    Attributes:
        text: the netlist.
        spec: the crossbar it describes.
        voltages: input voltages, (batch, rows), V.
        topology: node names and elements, shared with the exact solver.
        options: ngspice ``.options`` written into it.
    """

    text: str
    spec: CrossbarSpec
    voltages: np.ndarray
    topology: CrossbarTopology
    options: dict = field(default_factory=dict)

    @property
    def batch(self) -> int:
        """Number of input vectors."""
        return self.voltages.shape[0]

    def sidecar(self) -> dict:
        """Return the JSON-ready description written next to the netlist."""
        return {"format": "spicecross-crossbar/1", "spec": self.spec.to_dict(),
                "voltages_v": self.voltages.tolist(), "options": dict(self.options),
                "nodes": self.topology.n_nodes + 1,
                "netlist_sha256": hashlib.sha256(self.text.encode()).hexdigest()}


def _wrap(head: str, tokens: list) -> list:
    """Return ``head`` followed by ``tokens``, split into continuation lines of about 200 characters."""
    lines, current = [], head
    for token in tokens:
        if len(current) + 1 + len(token) > _MAX_LINE:
            lines.append(current)
            current = "+ " + token
        else:
            current = current + " " + token
    lines.append(current)
    return lines


class _Formatter:
    """Caches formatted values, because a crossbar repeats the same few numbers many times."""

    def __init__(self):
        self.cache: dict = {}

    def __call__(self, value: float) -> str:
        text = self.cache.get(value)
        if text is None:
            text = self.cache[value] = format_value(value)
        return text


def device_order(rows: int, cols: int, leaf: int = 4) -> list[tuple[int, int]]:
    """Return the crosspoints (row, column) of a rows × cols array in nested-dissection order.

    The array is cut in two across its longer side. The crosspoints of each half
    come first, each half ordered the same way down to blocks of at most ``leaf``
    crosspoints (listed row by row), and the row or column on the cut comes last.
    """
    order: list[tuple[int, int]] = []
    stack = [("split", 0, rows, 0, cols)]
    # An explicit stack replaces recursion, so each split pushes its parts in reverse.
    while stack:
        kind, r0, r1, c0, c1 = stack.pop()
        if r1 <= r0 or c1 <= c0:
            continue
        if kind == "list" or (r1 - r0) * (c1 - c0) <= leaf:
            order.extend((i, j) for i in range(r0, r1) for j in range(c0, c1))
        elif r1 - r0 >= c1 - c0:
            m = (r0 + r1) // 2
            stack += [("list", m, m + 1, c0, c1), ("split", m + 1, r1, c0, c1),
                      ("split", r0, m, c0, c1)]
        else:
            m = (c0 + c1) // 2
            stack += [("list", r0, r1, m, m + 1), ("split", r0, r1, m + 1, c1),
                      ("split", r0, r1, c0, m)]
    return order


def format_crossbar_netlist(spec: CrossbarSpec, voltages, *, options: dict | None = None,
                            title: str | None = None) -> CrossbarNetlist:
    """Format the ngspice netlist of ``spec`` driven by a batch of input vectors.

    Args:
        spec: the crossbar.
        voltages: input voltages, (batch, rows) or (rows,), V.
        options: ngspice options, merged over :data:`DEFAULT_OPTIONS`.
        title: the title line (first line of the netlist).
    """
    v = check_voltages(voltages, spec.rows)
    opts = {**DEFAULT_OPTIONS, **(options or {})}
    topo = build_topology(spec)
    fmt = _Formatter()
    name = topo.names

    header = spec.to_dict(arrays=False)
    header.update({"n_vectors": int(v.shape[0]), "options": opts})
    drive_text = " and at the last column" if topo.ends == 2 else ""
    lines = [title or f"spicecross crossbar {spec.rows}x{spec.cols} {spec.device.name}",
             HEADER_MARKER + json.dumps(header, sort_keys=True),
             f"* Word lines are driven at column 0{drive_text}; bit lines are sensed below the last row.",
             "* i(vsns_c<j>) is the current of bit line j, positive into the sense node.",
             "* The .dc sweep of vsweep applies input vector k at sweep value k.",
             "", "* ---- device model"]
    lines += spec.device.subckt_text.strip().splitlines()

    # Devices come first, so that they set the node numbering (see device_order).
    # The first pin is on the word line, the second on the bit line.
    lines += ["", "* ---- devices, in nested-dissection order of their crosspoints"]
    params = spec.device.instance_params(spec.conductances)
    keys = sorted(params)
    for i, j in device_order(spec.rows, spec.cols):
        values = " ".join(f"{k}={fmt(params[k][i, j])}" for k in keys)
        lines.append(f"xd_r{i}_c{j} {name[topo.wl_nodes[i, j]]} {name[topo.bl_nodes[i, j]]} "
                     f"{spec.device.subckt_name} {values}")

    # Drivers: one B source per driven end, its voltage a PWL of the sweep variable.
    # A single vector still gets two PWL points, because pwl() needs at least two.
    lines += ["", "* ---- drivers", f"vsweep sweep {GROUND} 0"]
    batch = v.shape[0]
    xs = np.arange(max(batch, 2), dtype=float)
    # Where ideal wires join both ends of a word line into one node, that row gets
    # the west driver only, because two voltage sources on one node make the matrix singular.
    for i in range(spec.rows):
        values = v[:, i] if batch > 1 else np.repeat(v[:, i], 2)
        points = [f"{fmt(x)},{fmt(y)}," for x, y in zip(xs, values, strict=True)]
        points[-1] = points[-1][:-1] + ")"
        for e, side in enumerate(("w", "e")[:topo.ends]):
            if e == 1 and topo.driver_nodes[i, 1] == topo.driver_nodes[i, 0]:
                continue
            head = f"bdrv_r{i}_{side} {name[topo.driver_nodes[i, e]]} {GROUND} v=pwl(v(sweep),"
            lines += _wrap(head, points)

    # Wires and source/sense resistances that were not merged away.
    lines += ["", "* ---- wires, source and sense resistances"]
    for rname, a, b, ohm in zip(topo.res_names, topo.res_a, topo.res_b, topo.res_ohm, strict=True):
        lines.append(f"{rname} {name[a]} {name[b]} {fmt(ohm)}")

    # Sense ammeters: 0 V sources from each virtual ground to ground.
    lines += ["", "* ---- sense ammeters"]
    lines += [f"vsns_c{j} {name[topo.ground_nodes[j]]} {GROUND} 0" for j in range(spec.cols)]

    # .print makes a plain 'ngspice -b FILE' list the bit-line currents; runs through
    # the shared library or with -r read the vectors instead.
    lines += ["", ".options " + " ".join(f"{k}={fmt(val)}" for k, val in opts.items()),
              f".dc vsweep 0 {batch - 1} 1"]
    lines += _wrap(".print dc", [f"i(vsns_c{j})" for j in range(spec.cols)])
    lines += [".end", ""]
    return CrossbarNetlist(text="\n".join(lines), spec=spec, voltages=v, topology=topo, options=opts)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        # mkstemp creates the file readable by its owner only; give it the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sidecar_path(netlist_path: str | Path) -> Path:
    """Return the path of the JSON sidecar of a netlist file (``FILE.cir`` → ``FILE.json``)."""
    return Path(netlist_path).with_suffix(".json")


def write_crossbar_netlist(path: str | Path, netlist: CrossbarNetlist) -> tuple[Path, Path]:
    """Write ``netlist`` and its JSON sidecar; return both paths."""
    path = Path(path)
    side = sidecar_path(path)
    if side == path:
        raise ValueError(f"netlist path {path} ends in .json: use a .cir name")
    write_text_atomic(side, json.dumps(netlist.sidecar()))
    try:
        write_text_atomic(path, netlist.text)
    except BaseException:
        side.unlink(missing_ok=True)
        raise
    return path, side


def read_sidecar(netlist_path: str | Path) -> tuple[CrossbarSpec, np.ndarray, dict]:
    """Read the spec, input voltages (V) and ngspice options from a netlist's sidecar JSON."""
    side = sidecar_path(netlist_path)
    if not side.exists():
        raise FileNotFoundError(
            f"{side} not found: the exact engine needs the sidecar JSON that "
            "'spicecross netlist generate' writes next to the netlist; regenerate the netlist")
    data = json.loads(side.read_text())
    if data.get("format") != "spicecross-crossbar/1":
        raise ValueError(f"{side} is not a spicecross sidecar (format {data.get('format')!r})")
    spec = CrossbarSpec.from_dict(data["spec"])
    return spec, np.asarray(data["voltages_v"], dtype=float), data["options"]


def sidecar_matches(netlist_path: str | Path) -> bool | None:
    """Return whether the netlist file is the one its sidecar describes (None: no sidecar or no hash)."""
    side = sidecar_path(netlist_path)
    if not side.exists():
        return None
    expected = json.loads(side.read_text()).get("netlist_sha256")
    if expected is None:
        return None
    return hashlib.sha256(Path(netlist_path).read_bytes()).hexdigest() == expected
