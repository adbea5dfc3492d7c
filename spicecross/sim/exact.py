"""Exact nodal solver of crossbar circuits in numpy and scipy.

Solves Kirchhoff's current law at every free node of the circuit that
:func:`~spicecross.crossbar.topology.build_topology` describes: wires and
source/sense resistances are linear conductances, drivers and virtual grounds fix
node voltages, and each device adds its I–V law between its word-line and
bit-line nodes. All input vectors of a batch are solved together.

Method. The nodal matrix (linear devices) and the Newton Jacobian J (nonlinear,
monotone devices) are symmetric positive definite, because every free node has a
wire path to a fixed node and every device slope dI/dV is >= 0. The wires alone
form independent chains, one per word line and one per bit line. With the nodes
numbered along the chains, J is chain-tridiagonal on the word-line side and on
the bit-line side, and only the devices couple the two sides. The solver
eliminates one side (a Thomas sweep along its chains) and runs the conjugate
gradient method (CG) on the Schur complement of the other, preconditioned by
that side's chain-tridiagonal block. The sweeps are vectorised over chains and
input vectors, and the factorization is cheap enough to redo with fresh slopes
at every Newton iteration of every vector. A wire segment conducts far more
than a device, so CG needs few iterations. A 128×128 crossbar of 1–2 Ω
segments and 10–100 µS linear devices takes about 7 in total: the solve to
1e-12 relative and one check against the true residual.

Nonlinear devices start from the solution with each device replaced by its
chord conductance, then run Newton's method with a backtracking line search on
the residual norm. Each step is solved by CG only as accurately as the current
error needs, which keeps the convergence quadratic. A vector whose CG solve
does not converge in :data:`CG_MAX_ITER` iterations (devices that conduct about
as much as the wires) is solved by sparse LU instead, and ``method="direct"``
uses sparse LU for every solve. The numbers behind these choices (sparse LU,
CG on the full system, CG on the Schur complement) are in docs/benchmarks.md.

Only built-in device laws can be solved here; a user's subcircuit needs ngspice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import lapack
from scipy.sparse.csgraph import connected_components, depth_first_order

from spicecross.crossbar.spec import CrossbarSpec, check_conductances, check_voltages
from spicecross.crossbar.topology import RES_BIT, RES_SENSE, RES_SOURCE, RES_WORD, build_topology
from spicecross.errors import ConvergenceError, NetlistError
from spicecross.sim.result import SolveResult

logger = logging.getLogger(__name__)

#: Newton stops when its largest voltage update is below this fraction of the largest
#: input voltage magnitude of the vector. The update is computed from the true residual,
#: so the remaining error is far smaller than this.
NEWTON_STEP_RTOL = 1e-11
NEWTON_MAX_ITER = 100
#: Factors by which CG reduces the preconditioned residual norm: for linear devices, for
#: the chord-conductance start of nonlinear ones, and the bounds for a Newton step, whose
#: factor follows the relative size of the previous step.
CG_LINEAR_RTOL = 1e-12
CG_CHORD_RTOL = 1e-2
CG_NEWTON_RTOL_MIN = 1e-10
CG_NEWTON_RTOL_MAX = 1e-1
#: CG iterations after which a vector is solved by sparse LU instead.
CG_MAX_ITER = 300
#: Largest batch·slots solved at once (32 MB per float64 work array); larger batches
#: are split into chunks of equal size.
CHUNK_ENTRIES = 1 << 22
#: Solver methods: ``auto`` (chain-preconditioned CG, sparse LU where CG does not apply
#: or does not converge) and ``direct`` (sparse LU for every solve).
METHODS = ("auto", "direct")


@dataclass(frozen=True)
class _ChainGroup:
    """Wire chains of equal padded length, stored position-major.

    Slot ``start + k·chains + c`` (counted from the start of its side) is position k
    of chain c. Padding slots past a chain's end have diagonal 1 and no coupling, so
    they stay at 0 V.

    Attributes:
        start, stop: slot range of the group within its side.
        length: positions per chain.
        chains: number of chains.
        coupling: off-diagonal entry between positions k and k+1 (−conductance, S),
            shape (length − 1, chains).
    """

    start: int
    stop: int
    length: int
    chains: int
    coupling: np.ndarray


def _distinct(values: np.ndarray, bound: int) -> bool:
    """Return whether the integers ``values``, all in [0, bound), are pairwise different."""
    return values.size == 0 or int(np.bincount(values, minlength=bound).max()) <= 1


def _chain_layout(n: int, wire_a: np.ndarray, wire_b: np.ndarray, wire_value: np.ndarray,
                  side: np.ndarray):
    """Number the free nodes along their wire chains, word-line side first.

    Args:
        n: number of free nodes.
        wire_a, wire_b: free-node indices of the two ends of each wire whose ends are
            both free, each wire once.
        wire_value: the wire's off-diagonal entry in the nodal matrix (−conductance), S.
        side: per free node, 0 for a device's word-line pin, 1 for its bit-line pin, -1
            for a node with no device (it takes the side of its chain).

    Returns:
        ``(slot_of_free, n_word_slots, n_slots, word_groups, bit_groups)``, or ``None``
        when the wires among the free nodes do not form simple chains that each stay
        on one side (then the chain preconditioner does not apply and LU is used).
    """
    if n == 0 or np.any(wire_a == wire_b):
        return None
    degree = np.bincount(wire_a, minlength=n) + np.bincount(wire_b, minlength=n)
    if degree.max(initial=0) > 2:
        return None
    ones = np.ones(2 * wire_a.size)
    graph = sp.csr_matrix((ones, (np.concatenate([wire_a, wire_b]), np.concatenate([wire_b, wire_a]))),
                          shape=(n, n))
    n_comp, label = connected_components(graph, directed=False)
    # A connected graph with every degree <= 2 is a path when it has one edge fewer than nodes.
    edges = np.bincount(label, weights=degree, minlength=n_comp) / 2
    sizes = np.bincount(label, minlength=n_comp)
    if np.any(edges != sizes - 1):
        return None
    # Start each chain at its lowest-numbered end. A depth-first search from a
    # virtual root joined to every start then walks each chain in order.
    ends = np.flatnonzero(degree <= 1)
    starts = np.full(n_comp, -1)
    starts[label[ends[::-1]]] = ends[::-1]  # the last write wins: the lowest end of each chain
    if np.any(starts < 0):
        return None
    root = n
    root_links = np.full(n_comp, root)
    aug = sp.csr_matrix(
        (np.ones(ones.size + 2 * n_comp),
         (np.concatenate([wire_a, wire_b, starts, root_links]),
          np.concatenate([wire_b, wire_a, root_links, starts]))),
        shape=(n + 1, n + 1))
    order, pred = depth_first_order(aug, root, directed=True, return_predecessors=True)
    order = order[1:]
    is_start = pred[order] == root
    chain = np.cumsum(is_start) - 1
    chain_start = np.flatnonzero(is_start)
    position = np.arange(n) - chain_start[chain]
    lengths = np.diff(np.append(chain_start, n))
    on_word = np.bincount(chain, weights=side[order] == 0, minlength=lengths.size) > 0
    on_bit = np.bincount(chain, weights=side[order] == 1, minlength=lengths.size) > 0
    if np.any(on_word & on_bit):
        return None
    chain_side = on_bit.astype(int)

    # Chains of similar length share a group, padded to a length at most 19 % longer.
    if np.unique(lengths).size <= 4:
        padded = lengths
    else:
        padded = np.ceil(2.0 ** (np.ceil(4 * np.log2(lengths)) / 4)).astype(int)
    slot_of_free = np.empty(n, dtype=np.int64)
    side_groups = ([], [])
    side_start = 0
    side_stops = []
    for side_id in (0, 1):
        start = 0
        for length in np.unique(padded[chain_side == side_id]):
            members = np.flatnonzero((padded == length) & (chain_side == side_id))
            chains = members.size
            index_in_group = np.full(lengths.size, -1)
            index_in_group[members] = np.arange(chains)
            in_group = np.flatnonzero(index_in_group[chain] >= 0)
            slot_of_free[order[in_group]] = (side_start + start + position[in_group] * chains
                                             + index_in_group[chain[in_group]])
            stop = start + int(length) * chains
            side_groups[side_id].append((start, stop, int(length), chains))
            start = stop
        side_start += start
        side_stops.append(side_start)
    n_word, n_slots = side_stops

    # Every wire must join consecutive positions of one chain.
    coupling = np.zeros(n_slots)
    slot_a, slot_b = slot_of_free[wire_a], slot_of_free[wire_b]
    si, sj, value = np.minimum(slot_a, slot_b), np.maximum(slot_a, slot_b), wire_value
    if not _distinct(si, n_slots):
        return None
    built = ([], [])
    for side_id, offset in ((0, 0), (1, n_word)):
        for start, stop, length, chains in side_groups[side_id]:
            inside = (si >= offset + start) & (si < offset + stop)
            if np.any((sj[inside] - si[inside] != chains) | (sj[inside] >= offset + stop)):
                return None
            coupling[si[inside]] = value[inside]
            block = coupling[offset + start:offset + stop].reshape(length, chains)
            built[side_id].append(_ChainGroup(start, stop, length, chains, block[:-1].copy()))
    return slot_of_free, n_word, n_slots, built[0], built[1]


def _rows_product(matrix: sp.spmatrix, rows: np.ndarray) -> np.ndarray:
    """Return ``rows @ matrix.T`` for a dense (batch, n) array: the product applied to each row."""
    return np.ascontiguousarray((matrix @ rows.T).T)


class _SparseRows:
    """A sparse matrix with few entries, applied to each row of a wide dense array.

    Only the columns that the matrix uses are read, so applying it costs far less
    than a sparse product with the whole (batch, n) array.
    """

    def __init__(self, matrix: sp.spmatrix):
        coo = sp.coo_matrix(matrix)
        order = np.argsort(coo.row, kind="stable")
        self.shape = coo.shape
        self.cols, self.data = coo.col[order], coo.data[order]
        self.rows, self.starts = np.unique(coo.row[order], return_index=True)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return ``x @ matrix.T`` for ``x`` of shape (batch, n)."""
        out = np.zeros((x.shape[0], self.shape[0]))
        if self.cols.size:
            out[:, self.rows] = np.add.reduceat(x[:, self.cols] * self.data, self.starts, axis=1)
        return out


class _ChainMatrix:
    """A chain-tridiagonal matrix: wire couplings along chains plus a diagonal.

    Arrays are (batch, slots). The diagonal has one row per input vector or one row
    shared by all. Within a group, slot ``start + k·chains + c`` is position k of
    chain c, so a group reshapes to (batch, length, chains) and each step along the
    chains is one vectorised operation over chains and vectors. Methods write into
    arrays the caller owns, because a fresh multi-megabyte temporary per CG
    iteration can cost more in page faults than the arithmetic.
    """

    def __init__(self, groups: list, diagonal: np.ndarray):
        self.groups = groups
        self.diagonal = diagonal

    def matvec(self, p: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """Write T·p into ``out``, using ``scratch`` (shaped like ``p``) as work space."""
        np.multiply(self.diagonal, p, out=out)
        for group in self.groups:
            shape = (-1, group.length, group.chains)
            p3 = p[:, group.start:group.stop].reshape(shape)
            o3 = out[:, group.start:group.stop].reshape(shape)
            t3 = scratch[:, group.start:group.stop].reshape(shape)[:, :-1]
            np.multiply(group.coupling, p3[:, 1:], out=t3)
            o3[:, :-1] += t3
            np.multiply(group.coupling, p3[:, :-1], out=t3)
            o3[:, 1:] += t3
        return out


#: Largest (input vectors × chains) of a group that :class:`_ChainFactor` solves with
#: LAPACK. Measured on 64×64 to 256×256 crossbars: LAPACK was 3–45 % faster up to
#: 512 (numpy's per-call cost dominates the Thomas recurrence there), and up to
#: 20 % slower from 2,048, where the vectorised recurrence pays off.
_LAPACK_MAX_WIDTH = 512


class _ChainFactor(_ChainMatrix):
    """A chain-tridiagonal matrix with its LDLᵀ factors, one per chain.

    A group solved for few vectors (``batch × chains`` up to
    :data:`_LAPACK_MAX_WIDTH`) is factored by LAPACK (``dpttrf``) as one
    block-diagonal tridiagonal matrix whose blocks are its chains (and input
    vectors, where each has its own diagonal), and solved by ``dpttrs``. That
    costs a few library calls instead of two numpy operations per position along
    the chains. Other groups, and any group that LAPACK finds not positive
    definite, use the Thomas recurrence vectorised over vectors and chains.

    Args:
        groups: the chain groups of one side.
        diagonal: the diagonal, (1, slots) shared by all vectors or (batch, slots).
        batch: number of input vectors that will be solved with these factors.
    """

    def __init__(self, groups: list, diagonal: np.ndarray, batch: int):
        super().__init__(groups, diagonal)
        self.factors = []
        for group in groups:
            d = diagonal[:, group.start:group.stop].reshape(-1, group.length, group.chains)
            factor = None
            if batch * group.chains <= _LAPACK_MAX_WIDTH:
                factor = self._lapack_factor(group, d)
            self.factors.append(factor if factor is not None else self._thomas_factor(group, d))

    @staticmethod
    def _lapack_factor(group: _ChainGroup, d: np.ndarray):
        """Return ("lapack", D, E) of ``dpttrf`` on the chain-major diagonal ``d``, or None if it fails."""
        rows = d.shape[0]
        if d.size < 2:
            # The f2py wrapper rejects the empty off-diagonal of a 1×1 matrix.
            return None
        diag = np.ascontiguousarray(d.transpose(0, 2, 1)).reshape(-1)
        off = np.zeros((rows, group.chains, group.length))
        off[:, :, :-1] = group.coupling.T
        dfac, efac, info = lapack.dpttrf(diag, off.reshape(-1)[:-1])
        if info != 0:
            return None
        return ("lapack", dfac, efac)

    @staticmethod
    def _thomas_factor(group: _ChainGroup, d: np.ndarray):
        """Return ("thomas", inverse pivots, multipliers) of the Thomas recurrence along the chains."""
        inv_pivot = np.empty_like(d)
        multiplier = np.empty((d.shape[0], group.length - 1, group.chains))
        pivot = d[:, 0]
        inv_pivot[:, 0] = 1.0 / pivot
        for k in range(1, group.length):
            np.multiply(group.coupling[k - 1], inv_pivot[:, k - 1], out=multiplier[:, k - 1])
            pivot = d[:, k] - multiplier[:, k - 1] * group.coupling[k - 1]
            inv_pivot[:, k] = 1.0 / pivot
        return ("thomas", inv_pivot, multiplier)

    def take(self, rows: np.ndarray) -> _ChainFactor:
        """Return the matrix and factors of a subset of input vectors (a shared one stays shared)."""
        out = object.__new__(_ChainFactor)
        out.groups = self.groups
        shared = self.diagonal.shape[0] == 1
        out.diagonal = self.diagonal if shared else self.diagonal[rows]
        out.factors = []
        for kind, diag_factor, off_factor in self.factors:
            if shared:
                out.factors.append((kind, diag_factor, off_factor))
            elif kind == "thomas":
                out.factors.append((kind, diag_factor[rows], off_factor[rows]))
            else:
                # The blocks of different vectors do not couple (their E entries between
                # blocks are 0), so a subset of blocks is the factor of those vectors.
                count = self.diagonal.shape[0]
                dfac = diag_factor.reshape(count, -1)[rows].reshape(-1)
                efac = np.append(off_factor, 0.0).reshape(count, -1)[rows].reshape(-1)[:-1]
                out.factors.append((kind, dfac, efac))
        return out

    def solve(self, rhs: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write the solution z of T·z = rhs into ``out`` (batch, slots), which may be ``rhs``."""
        for group, (kind, diag_factor, off_factor) in zip(self.groups, self.factors, strict=True):
            shape = (-1, group.length, group.chains)
            r = rhs[:, group.start:group.stop].reshape(shape)
            z = out[:, group.start:group.stop].reshape(shape)
            if kind == "lapack":
                self._lapack_solve(diag_factor, off_factor, r, z)
            else:
                self._thomas_solve(diag_factor, off_factor, r, z, out is rhs)
        return out

    def _lapack_solve(self, dfac: np.ndarray, efac: np.ndarray, r: np.ndarray, z: np.ndarray) -> None:
        """Write the solution z of T·z = r with ``dpttrs`` (r and z: (batch, length, chains)).

        A shared factor takes one right-hand side per vector. Per-vector factors form
        one block-diagonal matrix, solved with all vectors as one right-hand side.
        """
        batch, length, chains = r.shape
        # Always a copy, because dpttrs overwrites it and ``r`` may be the caller's array.
        b = r.transpose(0, 2, 1).copy().reshape(batch, chains * length)
        if self.diagonal.shape[0] == 1:
            x, _ = lapack.dpttrs(dfac, efac, b.T, overwrite_b=True)
            x = x.T
        else:
            x, _ = lapack.dpttrs(dfac, efac, b.reshape(-1, 1), overwrite_b=True)
        z[...] = x.reshape(batch, chains, length).transpose(0, 2, 1)

    @staticmethod
    def _thomas_solve(inv_pivot, multiplier, r, z, in_place: bool) -> None:
        """Solve along the chains with the Thomas recurrence, vectorised over vectors and chains."""
        scratch = np.empty((r.shape[0], r.shape[2]))
        if not in_place:
            z[:, 0] = r[:, 0]
        for k in range(1, r.shape[1]):
            np.multiply(multiplier[:, k - 1], z[:, k - 1], out=scratch)
            np.subtract(r[:, k], scratch, out=z[:, k])
        z *= inv_pivot
        for k in range(r.shape[1] - 2, -1, -1):
            np.multiply(multiplier[:, k], z[:, k + 1], out=scratch)
            z[:, k] -= scratch


@dataclass(frozen=True)
class _PinMap:
    """The free pins of one polarity (word-line pins +1, bit-line pins −1) among the slots.

    Attributes:
        sign: +1 or −1, the incidence of these pins.
        devices: devices whose pin of this polarity is free, ascending.
        slots: the slot of each such pin.
        every: whether every device has this pin free.
        inverse: device index of each slot (0 for a slot without such a pin), or ``None``
            when some slot carries two such pins (nodes merged by ideal wires).
        unmatched: slots without such a pin (their ``inverse`` entry is a placeholder).
    """

    sign: float
    devices: np.ndarray
    slots: np.ndarray
    every: bool
    inverse: np.ndarray | None
    unmatched: np.ndarray | None

    def spread(self, values: np.ndarray) -> np.ndarray:
        """Return each slot's value of its pin's device (0 without one), (batch, slots)."""
        out = np.take(values, self.inverse, axis=1)
        out[:, self.unmatched] = 0.0
        return out


class _Pins:
    """The slots of all free device pins, for device voltages and current scatters.

    Each device has at most one free word-line pin and one free bit-line pin. A
    scatter is a gather by the inverse map when no slot carries two pins of one
    polarity, and a sparse product when ideal wires have merged such nodes.
    Gathers use ``np.take``, which is several times faster than fancy indexing
    along the second axis.
    """

    def __init__(self, inc_s: sp.csr_matrix):
        coo = inc_s.tocoo()
        n_dev, n_slots = inc_s.shape
        self.maps = []
        for sign in (1.0, -1.0):
            pick = coo.data == sign
            devices, slots = coo.row[pick].astype(np.intp), coo.col[pick].astype(np.intp)
            order = np.argsort(devices)
            devices, slots = devices[order], slots[order]
            inverse = unmatched = None
            if _distinct(slots, n_slots):
                inverse = np.zeros(n_slots, dtype=np.intp)
                inverse[slots] = devices
                matched = np.zeros(n_slots, dtype=bool)
                matched[slots] = True
                unmatched = np.flatnonzero(~matched)
            self.maps.append(_PinMap(sign, devices, slots, devices.size == n_dev, inverse, unmatched))
        self.unique = all(pin_map.inverse is not None for pin_map in self.maps)
        self.inc_t = inc_s.T.tocsr()
        self.abs_inc_t = abs(self.inc_t).tocsr()

    def voltages(self, x: np.ndarray, v_fixed: np.ndarray) -> np.ndarray:
        """Return device voltages (batch, devices), V, from slot voltages and the fixed-pin part."""
        v = v_fixed.copy()
        for pin_map in self.maps:
            part = np.take(x, pin_map.slots, axis=1)
            if not pin_map.every:
                v[:, pin_map.devices] += pin_map.sign * part
            elif pin_map.sign > 0:
                v += part
            else:
                v -= part
        return v

    def add_currents(self, current: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Add the current each device draws from its free pins to ``out`` (batch, slots), A."""
        if not self.unique:
            out += _rows_product(self.inc_t, current)
            return out
        for pin_map in self.maps:
            if pin_map.sign > 0:
                out += pin_map.spread(current)
            else:
                out -= pin_map.spread(current)
        return out

    def diagonal(self, slope: np.ndarray) -> np.ndarray:
        """Return each slot's sum of device slopes (batch, slots), S."""
        if not self.unique:
            return _rows_product(self.abs_inc_t, slope)
        word_pins, bit_pins = self.maps
        d = word_pins.spread(slope)
        d += bit_pins.spread(slope)
        return d


class _Coupling:
    """Devices with both pins free: gathers from and scatters to each side's slots.

    With at most one such device per slot, a scatter is a gather by the inverse map
    followed by zeroing the slots that have no coupled device. Nodes merged by ideal
    wires can carry several devices; then the scatter is a sparse product.
    """

    def __init__(self, inc_s: sp.csr_matrix, keep: slice, elim: slice):
        self.devices = np.flatnonzero(np.diff(inc_s.indptr) == 2)
        n = self.devices.size
        pins = inc_s[self.devices]
        self.gather = {}
        self.inverse = {}
        self.unmatched = {}
        self.scatter_matrix = {}
        for name, side in (("keep", keep), ("elim", elim)):
            part = abs(pins[:, side]).tocsr()
            part.sort_indices()
            slot = part.indices.astype(np.intp)
            if slot.size != n:
                raise AssertionError(f"internal error: {slot.size} of {n} devices with two free pins "
                                     f"have a pin on the {name} side, expected all")
            self.gather[name] = slot
            if _distinct(slot, side.stop - side.start):
                inverse = np.zeros(side.stop - side.start, dtype=np.intp)
                inverse[slot] = np.arange(n)
                matched = np.zeros(inverse.size, dtype=bool)
                matched[slot] = True
                self.inverse[name] = inverse
                self.unmatched[name] = np.flatnonzero(~matched)
            else:
                self.inverse[name] = None
                self.scatter_matrix[name] = part.T.tocsr()

    def scatter(self, name: str, w: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write Cᵀ·w into ``out``: each row of ``w`` has one value per coupled device."""
        inverse = self.inverse[name]
        if inverse is None:
            out[...] = _rows_product(self.scatter_matrix[name], w)
            return out
        np.take(w, inverse, axis=1, out=out, mode="clip")
        out[:, self.unmatched[name]] = 0.0
        return out


class _SchurSystem:
    """The Jacobian J(s) of one Newton iteration, reduced to its kept side.

    With the slots split into a kept side K and an eliminated side E, CG runs on
    S = J_KK − J_KE·J_EE⁻¹·J_EK, preconditioned by the chain-tridiagonal J_KK. J_EE
    is chain-tridiagonal too (devices only couple K to E), so applying S costs one
    Thomas sweep of E. The preconditioned spectrum of S is that of two-block Jacobi
    on J, squared, so CG needs about half the iterations it needs on J.

    Args:
        system: the crossbar's nodal system.
        s: device slopes dI/dV (S), (batch, devices) or (1, devices) shared by all vectors.
        batch: number of input vectors solved with this Jacobian.
    """

    def __init__(self, system: NodalSystem, s: np.ndarray, batch: int):
        self.coupling = system._coupling
        diagonal = system._pins.diagonal(s)
        diagonal += system._lap_diag
        self.keep = _ChainFactor(system._groups_keep, np.ascontiguousarray(diagonal[:, system._keep]), batch)
        self.eliminate = system._elim.stop > system._elim.start
        self.elim = (_ChainFactor(system._groups_elim, np.ascontiguousarray(diagonal[:, system._elim]), batch)
                     if self.eliminate else None)
        self.slope = s[:, self.coupling.devices]
        self._buffers = None

    def take(self, rows: np.ndarray) -> _SchurSystem:
        """Return the system of a subset of input vectors (a shared Jacobian stays shared)."""
        out = object.__new__(_SchurSystem)
        out.coupling = self.coupling
        out.keep = self.keep.take(rows)
        out.eliminate = self.eliminate
        out.elim = self.elim.take(rows) if self.eliminate else None
        out.slope = self.slope if self.slope.shape[0] == 1 else self.slope[rows]
        out._buffers = None
        return out

    def _work(self, batch: int):
        if self._buffers is None or self._buffers[0].shape[0] != batch:
            n_elim = self.elim.diagonal.shape[1] if self.eliminate else 0
            self._buffers = (np.empty((batch, self.coupling.devices.size)),
                             np.empty((batch, self.keep.diagonal.shape[1])), np.empty((batch, n_elim)))
        return self._buffers

    def _couple(self, src: np.ndarray, src_side: str, dst_side: str, out: np.ndarray) -> np.ndarray:
        """Write C_dstᵀ·diag(s)·C_src·src into ``out`` (each row of ``src`` is one vector)."""
        w = self._work(src.shape[0])[0]
        np.take(src, self.coupling.gather[src_side], axis=1, out=w, mode="clip")
        w *= self.slope
        return self.coupling.scatter(dst_side, w, out)

    def reduce(self, rhs_keep: np.ndarray, rhs_elim: np.ndarray) -> np.ndarray:
        """Return the reduced right-hand side r_K − J_KE·J_EE⁻¹·r_E (a new array)."""
        b = rhs_keep.copy()
        if self.eliminate:
            t = self.elim.solve(rhs_elim, np.empty_like(rhs_elim))
            b += self._couple(t, "elim", "keep", np.empty_like(b))
        return b

    def matvec(self, p: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write S·p into ``out``."""
        _, tmp_keep, tmp_elim = self._work(p.shape[0])
        self.keep.matvec(p, out, tmp_keep)
        if self.eliminate:
            self._couple(p, "keep", "elim", tmp_elim)
            self.elim.solve(tmp_elim, tmp_elim)
            out -= self._couple(tmp_elim, "elim", "keep", tmp_keep)
        return out

    def back_substitute(self, x_keep: np.ndarray, rhs_elim: np.ndarray) -> np.ndarray:
        """Return x_E = J_EE⁻¹·(r_E − J_EK·x_K)."""
        t = self._couple(x_keep, "keep", "elim", np.empty_like(rhs_elim))
        t += rhs_elim
        return self.elim.solve(t, t)


def _incident_rows(nodes: np.ndarray, shape: tuple, *entries) -> sp.csr_matrix:
    """Return rows ``nodes`` (repeats allowed) of a sparse matrix of ``shape``, without the whole matrix.

    Each entry is a triple (row, column, value) of arrays: the matrix has ``value``
    at (row, column), and entries at the same place add up.
    """
    unique, inverse = np.unique(nodes, return_inverse=True)
    position = np.full(shape[0], -1)
    position[unique] = np.arange(unique.size)
    rows, cols, data = [], [], []
    for node, column, value in entries:
        row = position[node]
        hit = row >= 0
        rows.append(row[hit])
        cols.append(column[hit])
        data.append(value[hit])
    matrix = sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(unique.size, shape[1]))
    return matrix[inverse]


class NodalSystem:
    """Sparse nodal equations of one crossbar, reused across input vectors.

    Args:
        spec: the crossbar; its device must be a built-in law.
        method: ``auto`` (chain-preconditioned CG, sparse LU for a vector whose CG solve
            does not converge) or ``direct`` (sparse LU for every solve, as a reference).
    """

    def __init__(self, spec: CrossbarSpec, *, method: str = "auto"):
        if not spec.device.is_builtin:
            raise NetlistError(
                f"the exact engine cannot solve device {spec.device.name!r}: it is a user "
                "subcircuit with no built-in I-V law. Use the ngspice engine (--engine ngspice), "
                "or calibrate a built-in law for it first")
        if method not in METHODS:
            raise ValueError(f"method={method!r} is invalid: use one of {list(METHODS)}")
        self.spec = spec
        start = time.perf_counter()
        topo = self.topology = build_topology(spec)
        topology_done = time.perf_counter()
        n = topo.n_nodes
        self.fixed = topo.fixed_mask
        self.free_idx = np.flatnonzero(~self.fixed)
        self.fixed_idx = np.flatnonzero(self.fixed)

        # Laplacian of the linear resistors.
        with np.errstate(divide="ignore", over="ignore"):
            g = 1.0 / topo.res_ohm
        if not np.all(np.isfinite(g)):
            k = int(np.flatnonzero(~np.isfinite(g))[0])
            raise ConvergenceError(
                f"resistor {topo.res_names[k]} of {topo.res_ohm[k]!r} Ω has a conductance that "
                "overflows float64, so the nodal matrix is singular: use 0 Ω for an ideal wire")
        self.res_g = g
        # Device pins: the incidence matrix has +1 at the word-line pin, -1 at the bit-line pin.
        self.dev_pos = topo.wl_nodes.ravel()
        self.dev_neg = topo.bl_nodes.ravel()
        self.g_dev = spec.conductances.ravel()
        self.law = spec.device.law
        self.law_params = {k: v.ravel() for k, v in spec.device.law_params(spec.shape).items()}
        self.v_ref = spec.v_ref
        self.is_linear = self.law.name == "linear" or (
            self.law.name == "power_law" and np.all(self.law_params["n"] == 2.0))
        self._setup_slots(method)
        # Rows of the KCL equations at the ground nodes, then the driver nodes (end by end).
        output_nodes = np.concatenate([topo.ground_nodes, topo.driver_nodes.T.ravel()])
        a, b = topo.res_a, topo.res_b
        self._output_laplacian = _SparseRows(_incident_rows(
            output_nodes, (n, n), (a, a, g), (a, b, -g), (b, b, g), (b, a, -g)))
        devices = np.arange(self.dev_pos.size)
        ones = np.ones(devices.size)
        self._output_incidence = _SparseRows(_incident_rows(
            output_nodes, (n, devices.size), (self.dev_pos, devices, ones), (self.dev_neg, devices, -ones)))
        #: Wall time (s) spent building the topology and the matrices of this system.
        self.build_seconds = {"topology": topology_done - start,
                              "matrices": time.perf_counter() - topology_done}

    @cached_property
    def laplacian(self) -> sp.csr_matrix:
        """Laplacian of the linear resistors over all nodes, (nodes, nodes), S."""
        topo, g = self.topology, self.res_g
        a, b, n = topo.res_a, topo.res_b, topo.n_nodes
        return sp.coo_matrix(
            (np.concatenate([g, g, -g, -g]), (np.concatenate([a, b, a, b]), np.concatenate([a, b, b, a]))),
            shape=(n, n)).tocsr()

    @cached_property
    def incidence(self) -> sp.csr_matrix:
        """Device incidence, (devices, nodes): +1 at the word-line pin, -1 at the bit-line pin."""
        n_dev = self.dev_pos.size
        rows = np.concatenate([np.arange(n_dev), np.arange(n_dev)])
        return sp.coo_matrix(
            (np.concatenate([np.ones(n_dev), -np.ones(n_dev)]),
             (rows, np.concatenate([self.dev_pos, self.dev_neg]))),
            shape=(n_dev, self.topology.n_nodes)).tocsr()

    def _setup_slots(self, method: str) -> None:
        """Number the free nodes along the wire chains and build the matrices in that numbering."""
        topo = self.topology
        free, fixed = self.free_idx, self.fixed_idx
        n_free = free.size
        free_pos = np.full(topo.n_nodes, -1)
        free_pos[free] = np.arange(n_free)
        fixed_pos = np.full(topo.n_nodes, -1)
        fixed_pos[fixed] = np.arange(fixed.size)
        # Wires among the free nodes (free-node numbering) and the diagonal of their Laplacian.
        g = self.res_g
        fa, fb = free_pos[topo.res_a], free_pos[topo.res_b]
        both = (fa >= 0) & (fb >= 0)
        diagonal = (np.bincount(fa[fa >= 0], weights=g[fa >= 0], minlength=n_free)
                    + np.bincount(fb[fb >= 0], weights=g[fb >= 0], minlength=n_free))
        side = np.full(topo.n_nodes, -1)
        side[self.dev_pos] = 0
        side[self.dev_neg] = 1
        layout = _chain_layout(n_free, fa[both], fb[both], -g[both], side[free]) if n_free else None
        if layout is None:
            if n_free and method != "direct":
                logger.info("the wires of the %s crossbar do not form simple chains: solving by sparse LU",
                            self.spec.shape)
            slot_of_free = np.arange(n_free)
            n_word, n_slots, groups = 0, n_free, ([], [])
            method = "direct"
        else:
            slot_of_free, n_word, n_slots, *groups = layout
        #: ``cg`` or ``direct``: the method in use, after any fallback.
        self.method = "direct" if method == "direct" else "cg"
        self._slot_of_free = slot_of_free
        self._n_slots = n_slots

        # The same matrices in slot numbering; padding slots get a 1 on the diagonal.
        slot = np.full(topo.n_nodes, -1)
        slot[free] = slot_of_free
        sa, sb = slot[topo.res_a], slot[topo.res_b]
        self._lap_diag = np.ones(n_slots)
        self._lap_diag[slot_of_free] = diagonal
        self._lap_ss = sp.csr_matrix(
            (np.concatenate([-g[both], -g[both], self._lap_diag]),
             (np.concatenate([sa[both], sb[both], np.arange(n_slots)]),
              np.concatenate([sb[both], sa[both], np.arange(n_slots)]))), shape=(n_slots, n_slots))
        # Coupling of free nodes to fixed ones (wires with one fixed end).
        a_to_fixed = (sa >= 0) & (sb < 0)
        b_to_fixed = (sb >= 0) & (sa < 0)
        self._lap_sfix = sp.csr_matrix(
            (np.concatenate([-g[a_to_fixed], -g[b_to_fixed]]),
             (np.concatenate([sa[a_to_fixed], sb[b_to_fixed]]),
              np.concatenate([fixed_pos[topo.res_b[a_to_fixed]], fixed_pos[topo.res_a[b_to_fixed]]]))),
            shape=(n_slots, fixed.size))
        # Device incidence split into free pins (slots) and fixed pins.
        devices = np.arange(self.dev_pos.size)
        parts = {"slot": ([], [], []), "fixed": ([], [], [])}
        for pins, sign in ((self.dev_pos, 1.0), (self.dev_neg, -1.0)):
            is_free = slot[pins] >= 0
            for key, pick, column in (("slot", is_free, slot[pins]), ("fixed", ~is_free, fixed_pos[pins])):
                parts[key][0].append(np.full(pick.sum(), sign))
                parts[key][1].append(devices[pick])
                parts[key][2].append(column[pick])
        self._inc_s, self._inc_fix = (
            sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(devices.size, width))
            for (data, rows, cols), width in ((parts["slot"], n_slots), (parts["fixed"], fixed.size)))

        # CG runs on the Schur complement of the smaller side (word-line or bit-line
        # nodes). The other side is eliminated with its chain factorization.
        sides = (slice(0, n_word), slice(n_word, n_slots))
        sizes = (n_word, n_slots - n_word)
        keep = 0 if sizes[1] == 0 or 0 < sizes[0] < sizes[1] else 1
        self._keep, self._elim = sides[keep], sides[1 - keep]
        self._groups_keep, self._groups_elim = groups[keep], groups[1 - keep]
        self._pins = _Pins(self._inc_s)
        self._coupling = _Coupling(self._inc_s, self._keep, self._elim) if self.method == "cg" else None
        # The wire Laplacian over all slots, for residuals.
        shifted = [replace(g, start=g.start + side.start, stop=g.stop + side.start)
                   for side, side_groups in zip(sides, groups, strict=True) for g in side_groups]
        self._lap_chains = _ChainMatrix(shifted, self._lap_diag[None, :]) if layout else None

    # -------------------------------------------------------------- helpers --

    def fixed_voltages(self, voltages: np.ndarray) -> np.ndarray:
        """Return the voltage of every node (free ones 0) for each input vector, (batch, nodes), V."""
        topo = self.topology
        full = np.zeros((voltages.shape[0], topo.n_nodes))
        for e in range(topo.ends):
            full[:, topo.driver_nodes[:, e]] = voltages
        full[:, topo.ground_nodes] = 0.0
        return full

    def device_current(self, v_dev: np.ndarray, g_dev: np.ndarray | None = None) -> np.ndarray:
        """Return device currents (A) for device voltages ``v_dev`` (V), devices on the last axis."""
        g = self.g_dev if g_dev is None else g_dev
        return self.law.current(v_dev, g, v_ref=self.v_ref, **self.law_params)

    def device_slope(self, v_dev: np.ndarray, g_dev: np.ndarray | None = None) -> np.ndarray:
        """Return device dI/dV (S) for device voltages ``v_dev`` (V), devices on the last axis."""
        g = self.g_dev if g_dev is None else g_dev
        return self.law.slope(v_dev, g, v_ref=self.v_ref, **self.law_params)

    def residual(self, v: np.ndarray, g_dev: np.ndarray | None = None) -> np.ndarray:
        """Return the current leaving each node into the network (A).

        Args:
            v: node voltages, (nodes,) or (batch, nodes), V.
            g_dev: device conductances (S), flattened (rows·cols,); the spec's by default.
        """
        v_dev = (self.incidence @ v.T).T
        return (self.laplacian @ v.T).T + (self.incidence.T @ self.device_current(v_dev, g_dev).T).T

    def _law(self, g_dev: np.ndarray, linear: bool):
        """Return ``(current, slope)`` functions of device voltages (batch, devices), V."""
        if linear:
            g_row = g_dev[None, :]
            return (lambda v: g_row * v), (lambda v: g_row)
        return (lambda v: self.device_current(v, g_dev)), (lambda v: self.device_slope(v, g_dev))

    def _law_description(self) -> str:
        params = ", ".join(f"{k}={v[0]:g}" if np.all(v == v[0]) else f"{k}=per-device values"
                           for k, v in self.law_params.items())
        return f"device law {self.law.name!r} ({params or 'no parameters'})"

    def _overflow_error(self, v_dev: np.ndarray, quantity: str) -> ConvergenceError:
        finite = v_dev[np.isfinite(v_dev)]
        largest = float(np.max(np.abs(finite))) if finite.size else float("nan")
        return ConvergenceError(
            f"the {quantity} of {self._law_description()} is not finite at device voltages up to "
            f"{largest:.4g} V: the law overflows float64. Check the device parameters (a smaller "
            "voltage scale makes a law steeper) or lower the input voltages")

    def _steep_law_error(self, slope_max: float) -> ConvergenceError:
        wire = float(self.res_g.min()) if self.res_g.size else float("nan")
        return ConvergenceError(
            f"Newton's method failed for {self._law_description()}: no step along the Newton "
            f"direction lowers the KCL residual. Device slopes dI/dV reach {slope_max:.3g} S against "
            f"wire conductances down to {wire:.3g} S, so the Jacobian is numerically singular and its "
            "steps are unusable. The law is too steep for these input voltages: check the device "
            "parameters, lower the input voltages, or solve with ngspice")

    # --------------------------------------------------------------- solves --

    def _solve_slots(self, v_fixed: np.ndarray, v_scale: np.ndarray, g_dev: np.ndarray,
                     stats: dict) -> np.ndarray:
        """Solve for the slot voltages of every input vector, (batch, slots), V.

        Args:
            v_fixed: voltages of the fixed nodes, (batch, fixed nodes), V.
            v_scale: largest input voltage magnitude of each vector, (batch,), V.
            g_dev: device conductances, (devices,), S.
            stats: per-vector ``newton`` and ``cg`` iteration counts and the ``lu``
                factorization count are added here.
        """
        batch = v_fixed.shape[0]
        source = -_rows_product(self._lap_sfix, v_fixed)
        v_dev_fixed = _rows_product(self._inc_fix, v_fixed)
        x = np.zeros((batch, self._n_slots))
        # Linear devices, or the chord-conductance start of nonlinear ones.
        current, slope = self._law(g_dev, linear=True)
        if self.is_linear:
            x, _ = self._newton(x, source, v_dev_fixed, current, slope, v_scale, stats,
                                first_rtol=CG_LINEAR_RTOL, max_iter=NEWTON_MAX_ITER, linear=True)
            return x
        x, _ = self._newton(x, source, v_dev_fixed, current, slope, v_scale, stats,
                            first_rtol=CG_CHORD_RTOL, max_iter=1)
        current, slope = self._law(g_dev, linear=False)
        x, stats["newton"] = self._newton(x, source, v_dev_fixed, current, slope, v_scale, stats,
                                          first_rtol=CG_NEWTON_RTOL_MAX, max_iter=NEWTON_MAX_ITER)
        return x

    def _newton(self, x, source, v_dev_fixed, current, slope, v_scale, stats, *, first_rtol, max_iter,
                linear=False):
        """Run damped Newton on every row of ``x`` (batch, slots); return it and the iteration counts.

        With ``max_iter=1`` it takes one full step and does not check convergence (the
        chord start). Otherwise a row stops when its largest step entry is at most
        ``NEWTON_STEP_RTOL·v_scale``, and rows that do not stop within ``max_iter``
        iterations raise ConvergenceError. ``linear=True`` takes full steps.
        """
        batch = x.shape[0]
        iterations = np.zeros(batch, dtype=int)
        x = x.copy()
        step_tol = NEWTON_STEP_RTOL * v_scale
        rtol = np.full(batch, first_rtol)
        active = np.arange(batch)
        f, v_dev = self._residual_slots(x, source, v_dev_fixed, current)
        if not np.all(np.isfinite(f)):
            raise self._overflow_error(v_dev, "current")
        for _ in range(max_iter):
            iterations[active] += 1
            with np.errstate(over="ignore", invalid="ignore"):
                s = slope(v_dev)
            if not np.all(np.isfinite(s)):
                raise self._overflow_error(v_dev, "slope dI/dV")
            step = self._jacobian_solve(s, -f, rtol[active], stats, active)
            if max_iter == 1:
                x += step
                return x, iterations
            size = np.abs(step).max(axis=1)
            done = size <= step_tol[active]
            x[active[done]] += step[done]
            more = ~done
            # Inexact Newton: solve the next step to a relative accuracy about as small as
            # the current relative error, which keeps the convergence quadratic.
            with np.errstate(divide="ignore", invalid="ignore"):
                relative = size / v_scale[active]
            rtol[active] = np.clip(np.nan_to_num(relative), CG_NEWTON_RTOL_MIN, CG_NEWTON_RTOL_MAX)
            active, step, f = active[more], step[more], f[more]
            if active.size == 0:
                return x, iterations
            if linear:
                # The residual is affine in x, so the full step is taken. The residual is
                # recomputed at the new point to check the step's accuracy.
                x_active = x[active] + step
                f, v_dev = self._residual_slots(x_active, source[active], v_dev_fixed[active], current)
            else:
                x_active, f, v_dev = self._line_search(x[active], step, f, source[active],
                                                       v_dev_fixed[active], current, float(s.max()))
            x[active] = x_active
        worst = float(np.max(np.abs(f)))
        raise ConvergenceError(
            f"Newton's method did not converge in {max_iter} iterations for {active.size} of "
            f"{batch} input vectors (largest KCL residual {worst:.3e} A): the device law "
            f"{self.law.name!r} is too steep for these input voltages. Check the device "
            "parameters, or solve with ngspice")

    def _residual_slots(self, x, source, v_dev_fixed, current):
        """Return the KCL residual (A) at every slot and the device voltages (V), both (batch, ·)."""
        v_dev = self._pins.voltages(x, v_dev_fixed)
        with np.errstate(over="ignore", invalid="ignore"):
            i_dev = current(v_dev)
        if self._lap_chains is not None:
            f = self._lap_chains.matvec(x, np.empty_like(x), np.empty_like(x))
        else:
            f = _rows_product(self._lap_ss, x)
        f -= source
        self._pins.add_currents(i_dev, f)
        return f, v_dev

    def _line_search(self, x, step, f, source, v_dev_fixed, current, slope_max):
        """Backtrack each row until its residual norm drops, and return x, residual and device voltages."""
        norm0 = np.linalg.norm(f, axis=1)
        t = np.ones(x.shape[0])
        x_new = np.empty_like(x)
        f_new = np.empty_like(f)
        v_new = np.empty((x.shape[0], self._inc_s.shape[0]))
        pending = np.arange(x.shape[0])
        while pending.size:
            trial = x[pending] + t[pending, None] * step[pending]
            f_trial, v_trial = self._residual_slots(trial, source[pending], v_dev_fixed[pending], current)
            with np.errstate(over="ignore", invalid="ignore"):
                norm = np.linalg.norm(f_trial, axis=1)
            # A non-finite trial residual (an overflowing law) counts as no decrease.
            finite = np.isfinite(norm)
            accept = finite & ((norm <= (1 - 1e-4 * t[pending]) * norm0[pending]) | (t[pending] < 1e-6))
            accepted = pending[accept]
            x_new[accepted] = trial[accept]
            f_new[accepted] = f_trial[accept]
            v_new[accepted] = v_trial[accept]
            pending = pending[~accept]
            t[pending] *= 0.5
            if np.any(t[pending] < 1e-12):
                raise self._steep_law_error(slope_max)
        return x_new, f_new, v_new

    def _jacobian_solve(self, s, rhs, rtol, stats, vectors):
        """Solve J(s)·x = rhs for every row of ``rhs``.

        Args:
            s: device slopes dI/dV (S), (batch, devices) or (1, devices) when shared.
            rhs: right-hand sides, (batch, slots), A.
            rtol: per row, CG stops when the preconditioned residual norm has dropped by
                this factor.
            stats: ``cg`` counts per input vector and ``lu`` factorizations are added here.
            vectors: input-vector index of each row, for ``stats``.
        """
        if self.method == "direct":
            return self._lu_solve(s, rhs, stats)
        batch = rhs.shape[0]
        schur = _SchurSystem(self, s, batch)
        rhs_elim = np.ascontiguousarray(rhs[:, self._elim])
        b = schur.reduce(np.ascontiguousarray(rhs[:, self._keep]), rhs_elim)

        x_keep = np.zeros_like(b)
        x = np.zeros_like(b)
        r = b
        z = schur.keep.solve(r, np.empty_like(r))
        p = z.copy()
        q = np.empty_like(r)
        rz = np.einsum("ij,ij->i", r, z)
        tol = np.asarray(rtol, dtype=float) ** 2 * rz
        idx = np.arange(batch)
        active = schur
        converged = rz <= tol
        for iteration in range(CG_MAX_ITER + 1):
            if converged.any():
                x_keep[idx[converged]] = x[converged]
                more = ~converged
                idx, rz, tol = idx[more], rz[more], tol[more]
                x, r, p = x[more], r[more], p[more]
                z, q = np.empty_like(r), np.empty_like(r)
                active = active.take(more)
            if idx.size == 0 or iteration == CG_MAX_ITER:
                break
            stats["cg"][vectors[idx]] += 1
            active.matvec(p, q)
            pq = np.einsum("ij,ij->i", p, q)
            if not np.all(pq > 0):
                break  # J is not positive definite in floating point, so LU solves these rows
            alpha = (rz / pq)[:, None]
            np.multiply(p, alpha, out=z)
            x += z
            np.multiply(q, alpha, out=z)
            r -= z
            active.keep.solve(r, z)
            rz_new = np.einsum("ij,ij->i", r, z)
            p *= (rz_new / rz)[:, None]
            p += z
            rz = rz_new
            converged = rz <= tol

        out = np.empty_like(rhs)
        out[:, self._keep] = x_keep
        if schur.eliminate:
            out[:, self._elim] = schur.back_substitute(x_keep, rhs_elim)
        if idx.size:
            logger.info("CG did not converge for %d of %d vectors of the %s crossbar in %d iterations: "
                        "solving them by sparse LU", idx.size, batch, self.spec.shape, CG_MAX_ITER)
            out[idx] = self._lu_solve(s if s.shape[0] == 1 else s[idx], rhs[idx], stats)
        return out

    def _lu_solve(self, s, rhs, stats):
        """Solve J(s)·x = rhs by sparse LU, one factorization per distinct row of slopes."""
        out = np.empty_like(rhs)
        rows = [slice(None)] if s.shape[0] == 1 else range(rhs.shape[0])
        for row in rows:
            s_row = s[0] if s.shape[0] == 1 else s[row]
            jac = (self._lap_ss + self._inc_s.T @ sp.diags(s_row) @ self._inc_s).tocsc()
            try:
                lu = spla.splu(jac, permc_spec="MMD_AT_PLUS_A")
            except RuntimeError as exc:
                raise ConvergenceError(f"the nodal matrix of the {self.spec.shape} crossbar is singular "
                                       f"({exc}): check the wire resistances and device parameters") from exc
            stats["lu"] += 1
            out[row] = lu.solve(np.ascontiguousarray(rhs[row].T)).T
        if not np.all(np.isfinite(out)):
            raise ConvergenceError(f"the nodal solve of the {self.spec.shape} crossbar gave non-finite "
                                   "voltages: the matrix is numerically singular. Check the wire "
                                   "resistances and device parameters")
        return out

    def solve_nodes(self, voltages, conductances=None) -> tuple[np.ndarray, dict]:
        """Solve for every node voltage, (batch, nodes), V.

        Large batches are solved in equal chunks of at most :data:`CHUNK_ENTRIES` slot voltages.

        Args:
            voltages: input voltages, (batch, rows) or (rows,), V.
            conductances: device conductances (rows, cols), S, in place of the spec's.

        Returns:
            Node voltages in topology order, and a dict with per-vector ``newton`` and
            ``cg`` iteration counts and the number of ``lu`` factorizations.
        """
        v_in = check_voltages(voltages, self.spec.rows)
        g_dev = self._device_conductances(conductances)
        full = self.fixed_voltages(v_in)
        batch = v_in.shape[0]
        stats = {"newton": np.zeros(batch, dtype=int), "cg": np.zeros(batch, dtype=int), "lu": 0}
        if self.free_idx.size == 0:
            return full, stats
        v_fixed = full[:, self.fixed_idx]
        v_scale = np.abs(v_in).max(axis=1)
        n_chunks = -(-batch * self._n_slots // CHUNK_ENTRIES)
        chunk = -(-batch // n_chunks)
        for start in range(0, batch, chunk):
            rows = slice(start, min(start + chunk, batch))
            part = {"newton": np.zeros(rows.stop - start, dtype=int),
                    "cg": np.zeros(rows.stop - start, dtype=int), "lu": 0}
            x = self._solve_slots(v_fixed[rows], v_scale[rows], g_dev, part)
            full[rows, self.free_idx] = np.take(x, self._slot_of_free, axis=1)
            stats["newton"][rows] = part["newton"]
            stats["cg"][rows] = part["cg"]
            stats["lu"] += part["lu"]
        return full, stats

    def jacobian_solve(self, node_v: np.ndarray, rhs: np.ndarray, conductances=None) -> np.ndarray:
        """Solve J·λ = rhs with the free-node Jacobian J at the solution ``node_v``.

        J is symmetric, so this is also the adjoint solve of an implicit-function gradient.

        Args:
            node_v: node voltages (batch, nodes), V, from :meth:`solve_nodes`.
            rhs: one right-hand side per vector at the free nodes, (batch, free nodes), in the
                order of ``free_idx``, A.
            conductances: device conductances (rows, cols), S, in place of the spec's.

        Returns:
            λ, (batch, free nodes), V.
        """
        g_dev = self._device_conductances(conductances)
        rhs = np.atleast_2d(np.asarray(rhs, dtype=float))
        if self.free_idx.size == 0:
            return np.zeros_like(rhs)
        _, slope = self._law(g_dev, linear=self.is_linear)
        s = slope(_rows_product(self.incidence, np.atleast_2d(node_v)))
        rhs_slots = np.zeros((rhs.shape[0], self._n_slots))
        rhs_slots[:, self._slot_of_free] = rhs
        stats = {"cg": np.zeros(rhs.shape[0], dtype=int), "lu": 0}
        rtol = np.full(rhs.shape[0], CG_LINEAR_RTOL)
        x = self._jacobian_solve(s, rhs_slots, rtol, stats, np.arange(rhs.shape[0]))
        return x[:, self._slot_of_free]

    def _device_conductances(self, conductances) -> np.ndarray:
        if conductances is None:
            return self.g_dev
        g = check_conductances(conductances)
        if g.shape != self.spec.shape:
            raise ValueError(f"conductances have shape {g.shape}, expected {self.spec.shape}: one "
                             "value per device of this crossbar")
        return g.ravel()

    def solve(self, voltages) -> SolveResult:
        """Solve the crossbar for input voltages (batch, rows) in V.

        The result's ``info`` holds ``solver``, ``newton_iterations`` (per vector, empty
        for linear devices), ``cg_iterations`` (per vector, summed over all Newton steps)
        and ``lu_factorizations`` (sparse LU fallbacks, or every solve with ``direct``).
        """
        start = time.perf_counter()
        v_in = check_voltages(voltages, self.spec.rows)
        node_v, stats = self.solve_nodes(v_in)
        result = self._result(v_in, node_v, time.perf_counter() - start)
        result.info["newton_iterations"] = [] if self.is_linear else stats["newton"].tolist()
        result.info["cg_iterations"] = stats["cg"].tolist()
        result.info["lu_factorizations"] = int(stats["lu"])
        return result

    def _result(self, v_in: np.ndarray, node_v: np.ndarray, elapsed: float) -> SolveResult:
        topo = self.topology
        v_dev = np.take(node_v, self.dev_pos, axis=1) - np.take(node_v, self.dev_neg, axis=1)
        i_dev = self.device_current(v_dev)
        # Current leaving each ground and driver node into the network, (batch, cols + rows·ends).
        injection = self._output_laplacian(node_v) + self._output_incidence(i_dev)
        cols = topo.cols
        currents = -injection[:, :cols]
        driver_currents = injection[:, cols:].reshape(-1, topo.ends, topo.rows).transpose(0, 2, 1).copy()
        if topo.ends == 2:
            # Both ends merged into one node (ideal word line): split its current evenly.
            shared = topo.driver_nodes[:, 0] == topo.driver_nodes[:, 1]
            driver_currents[:, shared, :] /= 2.0
        power = np.einsum("br,bre->b", v_in, driver_currents)
        breakdown = {"devices": np.einsum("bd,bd->b", v_dev, i_dev)}
        dv = np.take(node_v, topo.res_a, axis=1) - np.take(node_v, topo.res_b, axis=1)
        loss = dv * dv * self.res_g
        for key, kind in (("word_wires", RES_WORD), ("bit_wires", RES_BIT), ("source", RES_SOURCE),
                          ("sense", RES_SENSE)):
            breakdown[key] = loss[:, topo.res_kind == kind].sum(axis=1)
        shape = (v_in.shape[0], topo.rows, topo.cols)
        solver = ("scipy sparse LU + Newton" if self.method == "direct"
                  else "chain-preconditioned CG + Newton (sparse LU fallback)")
        return SolveResult(
            currents=currents, driver_currents=driver_currents, power=power, power_breakdown=breakdown,
            wl_voltages=np.take(node_v, self.dev_pos, axis=1).reshape(shape),
            bl_voltages=np.take(node_v, self.dev_neg, axis=1).reshape(shape),
            engine="exact", elapsed_s=elapsed, info={"solver": solver})


def solve_exact(spec: CrossbarSpec, voltages, *, method: str = "auto") -> SolveResult:
    """Solve ``spec`` for a batch of input voltages (batch, rows), V, with the exact nodal solver."""
    return NodalSystem(spec, method=method).solve(voltages)
