"""The exact crossbar solution as a differentiable torch function.

:func:`solve_exact_torch` returns bit-line currents and driver power as tensors
with gradients with respect to the input voltages and the device conductances.
The forward pass solves the nodal equations with :class:`~spicecross.sim.exact.NodalSystem`
in float64. The backward pass uses the implicit function theorem: with F(x, V, G) = 0
the KCL residual at the free node voltages x, a loss L has

    dL/dθ = ∂L/∂θ − λᵀ·∂F/∂θ,   J·λ = (∂L/∂x)ᵀ,   J = ∂F/∂x,

for θ = V or G. J is the same symmetric positive definite Newton Jacobian that the
forward solve uses, so λ costs one more linear solve per vector, and the partial
derivatives come from torch autograd on the residual and output formulas.

Wires, drivers and the device law come from a :class:`~spicecross.crossbar.spec.CrossbarSpec`;
its conductances are ignored in favour of the ``conductances`` tensor. Everything
runs on the CPU in float64; outputs take the dtype and device of ``voltages``.
Second derivatives are not supported.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from spicecross.crossbar.spec import CrossbarSpec
from spicecross.sim.exact import NodalSystem

#: Nodal systems kept for reuse, keyed by wiring and device (not conductances).
SYSTEM_CACHE_SIZE = 8
_SYSTEMS: OrderedDict = OrderedDict()


def _system_key(spec: CrossbarSpec) -> tuple:
    device = spec.device
    params = tuple(sorted((k, np.asarray(v, dtype=float).tobytes(), np.shape(v))
                          for k, v in device.params.items()))
    arrays = tuple((a.shape, a.tobytes()) for a in (spec.r_word, spec.r_bit, spec.r_source, spec.r_sense))
    return (spec.shape, spec.drive, device.name, device.law.name if device.law else None, device.v_ref,
            params, arrays)


def nodal_system(spec_like) -> NodalSystem:
    """Return a :class:`NodalSystem` for a spec, reusing one built for the same wiring and device.

    Args:
        spec_like: a :class:`CrossbarSpec` or a :class:`NodalSystem` (returned as is).
    """
    if isinstance(spec_like, NodalSystem):
        return spec_like
    if not isinstance(spec_like, CrossbarSpec):
        raise TypeError(f"expected a CrossbarSpec or NodalSystem, got {type(spec_like).__name__}")
    key = _system_key(spec_like)
    system = _SYSTEMS.get(key)
    if system is None:
        system = NodalSystem(spec_like)
        _SYSTEMS[key] = system
        while len(_SYSTEMS) > SYSTEM_CACHE_SIZE:
            _SYSTEMS.popitem(last=False)
    else:
        _SYSTEMS.move_to_end(key)
    return system


def _sparse(matrix) -> torch.Tensor:
    coo = matrix.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data)
    return torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=True).coalesce()


class _CircuitIndex:
    """Index and sparse tensors that evaluate the circuit equations of one NodalSystem in torch.

    The circuit is evaluated with nodes on the first axis, (nodes, batch), where torch's
    row gathers and sparse products are fast.
    """

    def __init__(self, system: NodalSystem):
        topo = system.topology
        self.free = torch.from_numpy(system.free_idx)
        self.fixed = torch.from_numpy(system.fixed_idx)
        # Value source of each fixed node: its driver's input row, or `rows` (0 V) for a ground.
        row_of_node = np.full(topo.n_nodes, topo.rows)
        for end in range(topo.ends):
            row_of_node[topo.driver_nodes[:, end]] = np.arange(topo.rows)
        self.fixed_row = torch.from_numpy(row_of_node[system.fixed_idx])
        order = np.concatenate([system.free_idx, system.fixed_idx])
        self.unpermute = torch.from_numpy(np.argsort(order))
        self.laplacian = _sparse(system.laplacian)
        self.incidence_t = _sparse(system.incidence.T)
        self.dev_pos = torch.from_numpy(system.dev_pos)
        self.dev_neg = torch.from_numpy(system.dev_neg)
        self.ground = torch.from_numpy(topo.ground_nodes)
        self.law = system.law
        self.law_params = {k: torch.from_numpy(np.ascontiguousarray(v))[:, None]
                           for k, v in system.law_params.items()}
        self.v_ref = system.v_ref


_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _circuit_index(system: NodalSystem) -> _CircuitIndex:
    index = _INDEXES.get(system)
    if index is None:
        index = _INDEXES[system] = _CircuitIndex(system)
    return index


def _circuit(index: _CircuitIndex, free_v: torch.Tensor, voltages: torch.Tensor,
             conductances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Evaluate the circuit at free-node voltages ``free_v`` (batch, free nodes), V.

    Returns the KCL residual at the free nodes (batch, free nodes) in A, the bit-line
    currents (batch, cols) in A and the power delivered by the drivers (batch,) in W.
    """
    batch = voltages.shape[0]
    padded = torch.cat([voltages.T, voltages.new_zeros(1, batch)], dim=0)
    node_v = torch.cat([free_v.T, padded.index_select(0, index.fixed_row)], dim=0)
    node_v = node_v.index_select(0, index.unpermute)
    v_dev = node_v.index_select(0, index.dev_pos) - node_v.index_select(0, index.dev_neg)
    i_dev = index.law.current(v_dev, conductances.reshape(-1, 1), v_ref=index.v_ref, **index.law_params)
    # Current leaving each node into the network, (nodes, batch).
    injection = torch.sparse.mm(index.laplacian, node_v) + torch.sparse.mm(index.incidence_t, i_dev)
    residual = injection.index_select(0, index.free).T
    currents = -injection.index_select(0, index.ground).T
    # Σ over fixed nodes of V·(current into the network): the driver power (grounds are at 0 V).
    power = (node_v.index_select(0, index.fixed) * injection.index_select(0, index.fixed)).sum(dim=0)
    return residual, currents, power


class _ExactSolve(torch.autograd.Function):
    """Forward: nodal solve in numpy. Backward: implicit-function gradients."""

    @staticmethod
    def forward(ctx, voltages, conductances, system):
        v64 = voltages.detach().to("cpu", torch.float64)
        g64 = conductances.detach().to("cpu", torch.float64)
        node_v, _ = system.solve_nodes(v64.numpy(), g64.numpy())
        free_v = torch.from_numpy(np.ascontiguousarray(node_v[:, system.free_idx]))
        index = _circuit_index(system)
        _, currents, power = _circuit(index, free_v, v64, g64)
        ctx.system = system
        ctx.node_v = node_v
        ctx.save_for_backward(v64, g64, free_v)
        # Gradients go back in each input's dtype and device.
        ctx.input_kinds = ((voltages.dtype, voltages.device), (conductances.dtype, conductances.device))
        return currents.to(voltages), power.to(voltages)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_currents, grad_power):
        v64, g64, free_v = ctx.saved_tensors
        system = ctx.system
        index = _circuit_index(system)
        needs_v, needs_g = ctx.needs_input_grad[:2]
        with torch.enable_grad():
            v = v64.detach().requires_grad_(needs_v)
            g = g64.detach().requires_grad_(needs_g)
            x = free_v.detach().requires_grad_(True)
            residual, currents, power = _circuit(index, x, v, g)
            objective = ((grad_currents.to("cpu", torch.float64) * currents).sum()
                         + (grad_power.to("cpu", torch.float64) * power).sum())
            (d_x,) = torch.autograd.grad(objective, x, retain_graph=True)
            adjoint = system.jacobian_solve(ctx.node_v, d_x.numpy(), g64.numpy())
            total = objective - (torch.from_numpy(adjoint) * residual).sum()
            inputs = [t for t, need in ((v, needs_v), (g, needs_g)) if need]
            grads = list(torch.autograd.grad(total, inputs, allow_unused=True)) if inputs else []
        out = []
        for tensor, need, (dtype, device) in zip((v, g), (needs_v, needs_g), ctx.input_kinds, strict=True):
            if not need:
                out.append(None)
                continue
            grad = grads.pop(0)
            if grad is None:
                grad = torch.zeros_like(tensor)
            out.append(grad.to(device=device, dtype=dtype))
        return out[0], out[1], None


def solve_exact_torch(spec_like, voltages: torch.Tensor, conductances: torch.Tensor) -> dict:
    """Solve a crossbar exactly, differentiably in the input voltages and conductances.

    Args:
        spec_like: a :class:`CrossbarSpec` giving wires, drivers and the device law
            (its conductances are ignored), or a :class:`NodalSystem` built from one.
            Nodal systems are cached by wiring and device, so a new spec per call with
            new conductances costs no rebuild.
        voltages: input voltages (batch, rows), V.
        conductances: device chord conductances (rows, cols), S, all > 0.

    Returns:
        ``{"currents": (batch, cols) A, "power": (batch,) W}``, in the dtype and on the
        device of ``voltages``. Gradients flow to ``voltages`` and ``conductances``.

    Raises:
        ValueError: for shapes that do not match the crossbar or non-positive conductances.
        ConvergenceError: when the nodal solve fails (see :mod:`spicecross.sim.exact`).
    """
    system = nodal_system(spec_like)
    rows, cols = system.spec.shape
    if voltages.dim() != 2 or voltages.shape[1] != rows:
        raise ValueError(f"voltages have shape {tuple(voltages.shape)}, expected (batch, {rows}): one "
                         "voltage per word line for each input vector")
    if tuple(conductances.shape) != (rows, cols):
        raise ValueError(f"conductances have shape {tuple(conductances.shape)}, expected ({rows}, {cols}) "
                         "to match the crossbar")
    currents, power = _ExactSolve.apply(voltages, conductances.to(voltages.device), system)
    return {"currents": currents, "power": power}
