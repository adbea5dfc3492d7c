"""Exact nodal solver of crossbar circuits in scipy.

Solves Kirchhoff's current law at every free node of the circuit that
:func:`~spicecross.crossbar.topology.build_topology` describes: wires and
source/sense resistances are linear conductances, drivers and virtual grounds fix
node voltages, and each device adds its I–V law between its word-line and
bit-line nodes. Linear devices give one sparse linear system whose factorization
serves every input vector. Nonlinear devices are solved by Newton's method with
a backtracking line search, started from the linear solution with each device's
chord conductance. The Jacobian is symmetric positive definite for the built-in
monotone laws, because every node has a wire path to a fixed node.

Only built-in device laws can be solved here; a user's subcircuit needs ngspice.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from spicecross.crossbar.spec import CrossbarSpec, check_voltages
from spicecross.crossbar.topology import RES_BIT, RES_SENSE, RES_SOURCE, RES_WORD, build_topology
from spicecross.errors import ConvergenceError, NetlistError
from spicecross.sim.result import SolveResult

logger = logging.getLogger(__name__)

#: Newton stops when the largest voltage update is below this (V). Newton converges
#: quadratically, so the remaining error is far smaller than the last update.
NEWTON_VTOL = 1e-11
NEWTON_MAX_ITER = 100


class NodalSystem:
    """Sparse nodal equations of one crossbar, reused across input vectors.

    Args:
        spec: the crossbar; its device must be a built-in law.
    """

    def __init__(self, spec: CrossbarSpec):
        if not spec.device.is_builtin:
            raise NetlistError(
                f"the exact engine cannot solve device {spec.device.name!r}: it is a user "
                "subcircuit with no built-in I-V law. Use the ngspice engine (--engine ngspice), "
                "or calibrate a built-in law for it first")
        self.spec = spec
        topo = self.topology = build_topology(spec)
        n = topo.n_nodes
        self.fixed = topo.fixed_mask
        self.free_idx = np.flatnonzero(~self.fixed)
        self.fixed_idx = np.flatnonzero(self.fixed)

        # Laplacian of the linear resistors.
        g = 1.0 / topo.res_ohm
        a, b = topo.res_a, topo.res_b
        self.res_g = g
        self.laplacian = sp.coo_matrix(
            (np.concatenate([g, g, -g, -g]), (np.concatenate([a, b, a, b]), np.concatenate([a, b, b, a]))),
            shape=(n, n)).tocsr()
        # Device incidence: +1 at the word-line pin, -1 at the bit-line pin.
        self.dev_pos = topo.wl_nodes.ravel()
        self.dev_neg = topo.bl_nodes.ravel()
        n_dev = self.dev_pos.size
        rows = np.concatenate([np.arange(n_dev), np.arange(n_dev)])
        self.incidence = sp.coo_matrix(
            (np.concatenate([np.ones(n_dev), -np.ones(n_dev)]), (rows, np.concatenate([self.dev_pos, self.dev_neg]))),
            shape=(n_dev, n)).tocsr()
        self.g_dev = spec.conductances.ravel()
        self.law = spec.device.law
        self.law_params = {k: v.ravel() for k, v in spec.device.law_params(spec.shape).items()}
        self.v_ref = spec.v_ref
        self.is_linear = self.law.name == "linear" or (
            self.law.name == "power_law" and np.all(self.law_params["n"] == 2.0))

    # -------------------------------------------------------------- helpers --

    def fixed_voltages(self, voltages: np.ndarray) -> np.ndarray:
        """Return the voltage of every node (free ones 0) for each input vector, (batch, nodes), V."""
        topo = self.topology
        full = np.zeros((voltages.shape[0], topo.n_nodes))
        for e in range(topo.ends):
            full[:, topo.driver_nodes[:, e]] = voltages
        full[:, topo.ground_nodes] = 0.0
        return full

    def device_current(self, v_dev: np.ndarray) -> np.ndarray:
        """Return device currents (A) for device voltages ``v_dev`` (V)."""
        return self.law.current(v_dev, self.g_dev, v_ref=self.v_ref, **self.law_params)

    def device_slope(self, v_dev: np.ndarray) -> np.ndarray:
        """Return device dI/dV (S) for device voltages ``v_dev`` (V)."""
        return self.law.slope(v_dev, self.g_dev, v_ref=self.v_ref, **self.law_params)

    def _matrix(self, g_dev: np.ndarray) -> sp.csr_matrix:
        weighted = sp.diags(g_dev) @ self.incidence
        return (self.laplacian + self.incidence.T @ weighted).tocsr()

    def residual(self, v: np.ndarray) -> np.ndarray:
        """Return the current leaving each node into the network (A).

        Args:
            v: node voltages, (nodes,) or (batch, nodes), V.
        """
        v_dev = (self.incidence @ v.T).T
        return (self.laplacian @ v.T).T + (self.incidence.T @ self.device_current(v_dev).T).T

    # --------------------------------------------------------------- solves --

    def solve_linear(self, full: np.ndarray, g_dev: np.ndarray) -> np.ndarray:
        """Solve with each device replaced by a conductance ``g_dev`` (S), for all vectors at once."""
        if self.free_idx.size == 0:
            return full
        m = self._matrix(g_dev)
        m_ff = m[self.free_idx][:, self.free_idx].tocsc()
        m_fc = m[self.free_idx][:, self.fixed_idx]
        rhs = -(m_fc @ full[:, self.fixed_idx].T)
        lu = spla.splu(m_ff, permc_spec="MMD_AT_PLUS_A")
        out = full.copy()
        out[:, self.free_idx] = lu.solve(np.asarray(rhs)).T
        return out

    def solve_newton(self, v0: np.ndarray) -> tuple[np.ndarray, int]:
        """Solve the nonlinear equations for one vector from the initial node voltages ``v0`` (V)."""
        v = v0.copy()
        free = self.free_idx
        if free.size == 0:
            return v, 0
        f = self.residual(v)[free]
        for iteration in range(1, NEWTON_MAX_ITER + 1):
            jac = self._matrix(self.device_slope(self.incidence @ v))[free][:, free].tocsc()
            step = spla.spsolve(jac, -f, permc_spec="MMD_AT_PLUS_A")
            if np.max(np.abs(step)) < NEWTON_VTOL:
                v[free] += step
                return v, iteration
            # Backtracking on the residual norm keeps Newton stable on steep laws.
            norm0 = np.linalg.norm(f)
            t = 1.0
            while True:
                trial = v.copy()
                trial[free] += t * step
                f_trial = self.residual(trial)[free]
                if np.linalg.norm(f_trial) <= (1 - 1e-4 * t) * norm0 or t < 1e-6:
                    break
                t *= 0.5
            v, f = trial, f_trial
        raise ConvergenceError(
            f"Newton's method did not converge in {NEWTON_MAX_ITER} iterations (largest KCL "
            f"residual {np.max(np.abs(f)):.3e} A): check the device parameters, or solve with ngspice")

    def solve(self, voltages) -> SolveResult:
        """Solve the crossbar for input voltages (batch, rows) in V."""
        start = time.perf_counter()
        v_in = check_voltages(voltages, self.spec.rows)
        full = self.fixed_voltages(v_in)
        # Linear solve with chord conductances: exact for linear devices, a start otherwise.
        node_v = self.solve_linear(full, self.g_dev)
        iterations = []
        if not self.is_linear:
            for b in range(node_v.shape[0]):
                node_v[b], its = self.solve_newton(node_v[b])
                iterations.append(its)
        result = self._result(v_in, node_v, time.perf_counter() - start)
        result.info["newton_iterations"] = iterations
        return result

    def _result(self, v_in: np.ndarray, node_v: np.ndarray, elapsed: float) -> SolveResult:
        topo = self.topology
        injection = self.residual(node_v)  # current leaving each node, (batch, nodes)
        currents = -injection[:, topo.ground_nodes]
        driver_currents = np.stack([injection[:, topo.driver_nodes[:, e]] for e in range(topo.ends)], axis=2)
        if topo.ends == 2:
            # Both ends merged into one node (ideal word line): split its current evenly.
            shared = topo.driver_nodes[:, 0] == topo.driver_nodes[:, 1]
            driver_currents[:, shared, :] /= 2.0
        power = np.einsum("br,bre->b", v_in, driver_currents)
        v_dev = node_v @ self.incidence.T
        breakdown = {"devices": np.sum(v_dev * self.device_current(v_dev), axis=1)}
        dv = node_v[:, topo.res_a] - node_v[:, topo.res_b]
        loss = dv * dv * self.res_g
        for key, kind in (("word_wires", RES_WORD), ("bit_wires", RES_BIT), ("source", RES_SOURCE),
                          ("sense", RES_SENSE)):
            breakdown[key] = loss[:, topo.res_kind == kind].sum(axis=1)
        shape = (v_in.shape[0], topo.rows, topo.cols)
        return SolveResult(
            currents=currents, driver_currents=driver_currents, power=power, power_breakdown=breakdown,
            wl_voltages=node_v[:, topo.wl_nodes.ravel()].reshape(shape),
            bl_voltages=node_v[:, topo.bl_nodes.ravel()].reshape(shape),
            engine="exact", elapsed_s=elapsed, info={"solver": "scipy splu + Newton"})


def solve_exact(spec: CrossbarSpec, voltages) -> SolveResult:
    """Solve ``spec`` for a batch of input voltages (batch, rows), V, with the exact nodal solver."""
    return NodalSystem(spec).solve(voltages)
