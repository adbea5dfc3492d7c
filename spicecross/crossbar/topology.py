"""The nodes and elements of a crossbar circuit, shared by the netlist writer and the exact solver.

Both engines are fed from this one description, so a netlist and a nodal solve
can never disagree about where a wire or a device sits. Node names are
deterministic, lower-case and say where a node is:

============== ===========================================================
``wl_r{i}_c{j}`` word-line node of row i at column j (the device's first pin)
``bl_r{i}_c{j}`` bit-line node of row i at column j (the device's second pin)
``sns_c{j}``     bottom of bit line j, after its last wire segment
``vg_c{j}``      virtual ground of bit line j, after the sense resistance
``in_r{i}_w``    west end of word line i, after the source resistance
``src_r{i}_w``   output of the west driver of row i
``in_r{i}_e``, ``src_r{i}_e`` the same at the east end, when driven at both ends
============== ===========================================================

Zero-ohm elements merge their nodes. A merged node takes the name of its most
significant member: a driver output, then a virtual ground, then the lowest index.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from spicecross.crossbar.spec import CrossbarSpec

GROUND = "0"


@dataclass(frozen=True)
class CrossbarTopology:
    """Merged node list and element arrays of one crossbar.

    Node and resistor names are built on first use, because a 256x256 crossbar has
    about 130,000 of each and the exact solver needs none of them.

    Attributes:
        kept_raw: raw index (see :func:`raw_node_names`) of each merged node.
        node_of_raw: merged index of each raw node (see :func:`raw_node_names`).
        driver_nodes: merged node of each driver, shape (rows, ends), ends = 1 or 2.
        ground_nodes: merged virtual-ground node of each bit line, shape (cols,).
        wl_nodes, bl_nodes: merged node at each crosspoint, shape (rows, cols).
        res_a, res_b: merged end nodes of each resistor that was not merged away.
        res_ohm: resistance of each such resistor, Ω.
        res_kind: 0 word-line wire, 1 bit-line wire, 2 source, 3 sense.
        res_raw: raw index (see :func:`raw_resistor_names`) of each such resistor.
    """

    rows: int
    cols: int
    ends: int
    kept_raw: np.ndarray
    node_of_raw: np.ndarray
    driver_nodes: np.ndarray
    ground_nodes: np.ndarray
    wl_nodes: np.ndarray
    bl_nodes: np.ndarray
    res_a: np.ndarray
    res_b: np.ndarray
    res_ohm: np.ndarray
    res_kind: np.ndarray
    res_raw: np.ndarray

    @cached_property
    def names(self) -> list:
        """Name of each merged node."""
        raw = raw_node_names(self.rows, self.cols, self.ends)
        return [raw[k] for k in self.kept_raw]

    @cached_property
    def res_names(self) -> list:
        """Element name of each resistor that was not merged away."""
        raw = raw_resistor_names(self.rows, self.cols, self.ends)
        return [raw[k] for k in self.res_raw]

    @property
    def n_nodes(self) -> int:
        """Number of merged nodes (ground excluded)."""
        return int(self.kept_raw.size)

    @property
    def fixed_mask(self) -> np.ndarray:
        """True for nodes whose voltage is set: driver outputs and virtual grounds."""
        mask = np.zeros(self.n_nodes, dtype=bool)
        mask[self.driver_nodes.ravel()] = True
        mask[self.ground_nodes] = True
        return mask

    def node_index(self, name: str) -> int:
        """Return the merged index of the node named ``name`` (a raw or merged name)."""
        return int(self.node_of_raw[_raw_index(self.rows, self.cols, self.ends, name)])


RES_WORD, RES_BIT, RES_SOURCE, RES_SENSE = 0, 1, 2, 3
RES_KIND_NAMES = ("word_wire", "bit_wire", "source", "sense")


def raw_node_names(rows: int, cols: int, ends: int) -> list:
    """Return the raw (unmerged) node names in index order."""
    names = [f"wl_r{i}_c{j}" for i in range(rows) for j in range(cols)]
    names += [f"bl_r{i}_c{j}" for i in range(rows) for j in range(cols)]
    names += [f"sns_c{j}" for j in range(cols)]
    names += [f"vg_c{j}" for j in range(cols)]
    for side in ("w", "e")[:ends]:
        names += [f"in_r{i}_{side}" for i in range(rows)]
        names += [f"src_r{i}_{side}" for i in range(rows)]
    return names


def raw_resistor_names(rows: int, cols: int, ends: int) -> list:
    """Return the resistor names in the order :func:`build_topology` creates them.

    Word-line segments row by row, bit-line segments column by column, source
    resistances of each driven end, then sense resistances.
    """
    n_seg = cols + ends - 1
    names = [f"rwl_r{i}_s{k}" for i in range(rows) for k in range(n_seg)]
    names += [f"rbl_c{j}_s{k}" for j in range(cols) for k in range(rows)]
    for side in ("w", "e")[:ends]:
        names += [f"rsrc_r{i}_{side}" for i in range(rows)]
    names += [f"rsns_c{j}" for j in range(cols)]
    return names


def _offsets(rows: int, cols: int) -> dict:
    rc = rows * cols
    return {"wl": 0, "bl": rc, "sns": 2 * rc, "vg": 2 * rc + cols,
            "in_w": 2 * rc + 2 * cols, "src_w": 2 * rc + 2 * cols + rows,
            "in_e": 2 * rc + 2 * cols + 2 * rows, "src_e": 2 * rc + 2 * cols + 3 * rows}


def _raw_index(rows: int, cols: int, ends: int, name: str) -> int:
    off = _offsets(rows, cols)
    parts = name.lower().split("_")
    try:
        if parts[0] in ("wl", "bl"):
            i, j = int(parts[1][1:]), int(parts[2][1:])
            if 0 <= i < rows and 0 <= j < cols:
                return off[parts[0]] + i * cols + j
        elif parts[0] in ("sns", "vg"):
            j = int(parts[1][1:])
            if 0 <= j < cols:
                return off[parts[0]] + j
        elif parts[0] in ("in", "src") and parts[2] in ("w", "e")[:ends]:
            i = int(parts[1][1:])
            if 0 <= i < rows:
                return off[f"{parts[0]}_{parts[2]}"] + i
    except (IndexError, ValueError):
        pass
    raise KeyError(f"no node named {name!r} in a {rows}x{cols} crossbar")


def build_topology(spec: CrossbarSpec) -> CrossbarTopology:
    """Build the merged node list and resistor arrays of ``spec``."""
    rows, cols = spec.shape
    ends = 2 if spec.drive == "both" else 1
    off = _offsets(rows, cols)
    n_raw = 2 * rows * cols + 2 * cols + 2 * ends * rows
    r_idx = np.arange(rows)
    c_idx = np.arange(cols)
    wl = off["wl"] + r_idx[:, None] * cols + c_idx[None, :]
    bl = off["bl"] + r_idx[:, None] * cols + c_idx[None, :]

    # Raw resistors: (a, b, ohm, kind), in the order of raw_resistor_names().
    a_parts, b_parts, ohm_parts, kind_parts = [], [], [], []

    def add(a, b, ohm, kind):
        a_parts.append(np.ravel(a))
        b_parts.append(np.ravel(b))
        ohm_parts.append(np.ravel(np.broadcast_to(ohm, np.shape(a))))
        kind_parts.append(np.full(np.size(a), kind))

    # Word lines: west input node, then the cells, then (optionally) the east input node.
    west_in = off["in_w"] + r_idx
    word_nodes = np.concatenate([west_in[:, None], wl], axis=1)
    if ends == 2:
        word_nodes = np.concatenate([word_nodes, (off["in_e"] + r_idx)[:, None]], axis=1)
    n_seg = word_nodes.shape[1] - 1
    add(word_nodes[:, :-1], word_nodes[:, 1:], spec.r_word[:, :n_seg], RES_WORD)
    # Bit lines: cells top to bottom, then the sense node.
    bit_nodes = np.concatenate([bl, (off["sns"] + c_idx)[None, :]], axis=0)
    add(bit_nodes[:-1, :].T, bit_nodes[1:, :].T, spec.r_bit.T, RES_BIT)
    # Source resistances at each driven end, sense resistances at each bit line.
    for side in ("w", "e")[:ends]:
        add(off[f"src_{side}"] + r_idx, off[f"in_{side}"] + r_idx, spec.r_source, RES_SOURCE)
    add(off["sns"] + c_idx, off["vg"] + c_idx, spec.r_sense, RES_SENSE)

    a = np.concatenate(a_parts)
    b = np.concatenate(b_parts)
    ohm = np.concatenate(ohm_parts)
    kind = np.concatenate(kind_parts)

    # Merge the nodes of zero-ohm elements.
    zero = ohm == 0.0
    adjacency = sp.coo_matrix((np.ones(zero.sum()), (a[zero], b[zero])), shape=(n_raw, n_raw))
    _, label = connected_components(adjacency, directed=False)
    priority = np.full(n_raw, 2)
    priority[off["vg"] + c_idx] = 1
    for side in ("w", "e")[:ends]:
        priority[off[f"src_{side}"] + r_idx] = 0
    # Representative of each component: lowest (priority, index).
    order = np.lexsort((np.arange(n_raw), priority))
    position = np.empty(n_raw, dtype=np.int64)
    position[order] = np.arange(n_raw)
    first = np.full(label.max() + 1, n_raw, dtype=np.int64)
    np.minimum.at(first, label, position)
    rep = order[first[label]]
    kept_raw = np.flatnonzero(rep == np.arange(n_raw))
    merged_index = np.full(n_raw, -1)
    merged_index[kept_raw] = np.arange(kept_raw.size)
    node_of_raw = merged_index[rep]

    driver_nodes = np.stack([node_of_raw[off[f"src_{side}"] + r_idx] for side in ("w", "e")[:ends]],
                            axis=1)
    ground_nodes = node_of_raw[off["vg"] + c_idx]
    _check_no_shorts(driver_nodes, ground_nodes)

    keep = ~zero
    return CrossbarTopology(
        rows=rows, cols=cols, ends=ends, kept_raw=kept_raw, node_of_raw=node_of_raw,
        driver_nodes=driver_nodes, ground_nodes=ground_nodes,
        wl_nodes=node_of_raw[wl], bl_nodes=node_of_raw[bl],
        res_a=node_of_raw[a[keep]], res_b=node_of_raw[b[keep]], res_ohm=ohm[keep],
        res_kind=kind[keep], res_raw=np.flatnonzero(keep))


def _check_no_shorts(driver_nodes: np.ndarray, ground_nodes: np.ndarray) -> None:
    # Two ends of one word line may merge (an ideal word line driven at both ends);
    # that is allowed because both drivers apply the same voltage.
    drivers = set(driver_nodes.ravel().tolist())
    for row in range(driver_nodes.shape[0]):
        others = drivers - set(driver_nodes[row].tolist())
        if set(driver_nodes[row].tolist()) & others:
            raise ValueError(f"word line {row} is shorted to another driver by zero-ohm wires: "
                             "give the wires a resistance > 0 Ω")
    if drivers & set(ground_nodes.tolist()):
        raise ValueError("a driver is shorted to a virtual ground by zero-ohm wires")
