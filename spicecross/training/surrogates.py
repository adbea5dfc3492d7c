"""Choosing the surrogate of aware training, and re-calibrating it on ngspice results.

:func:`choose_surrogate` measures each candidate on tiles the network really
uses (its mapped conductances and real inputs) against the exact nodal solver,
which agrees with ngspice to about 1e-9, and keeps the cheapest one within the
tolerance: the device-only surrogate when the wires are ideal, else the IR-drop
relaxation with the fewest sweeps (and, where the IR drop is strong, a damping
below 1 that keeps the relaxation convergent), else the exact surrogate.

:func:`recalibrate` refits the IR-drop surrogate's two wire scales on ngspice
currents of the states the network uses, when a periodic validation finds the
surrogate's error above a bound.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from spicecross.nn.config import ConfigurationError, CrossbarConfig
from spicecross.sim.exact import solve_exact
from spicecross.surrogates import (
    CrossbarSurrogate,
    DeviceOnlySurrogate,
    ExactSurrogate,
    FittedLaw,
    IRDropSurrogate,
)

logger = logging.getLogger(__name__)

#: Relaxation settings tried in order, cheapest first: (sweeps, damping).
IR_DROP_CANDIDATES = ((2, 1.0), (4, 1.0), (8, 1.0), (12, 0.8), (16, 0.7), (24, 0.6), (40, 0.5))


@dataclass
class SurrogateChoice:
    """The chosen surrogate and the measurements behind the choice.

    Attributes:
        surrogate: the chosen model.
        label: a short description, such as ``ir_drop (16 sweeps, damping 0.7)``.
        measured: NRMSE of the bit-line currents against the exact solver, per candidate label.
        tolerance: the NRMSE a candidate had to reach.
    """

    surrogate: CrossbarSurrogate
    label: str
    measured: dict = field(default_factory=dict)
    tolerance: float = 1e-3

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        return {
            "kind": self.surrogate.kind,
            "label": self.label,
            "tolerance": self.tolerance,
            "measured_nrmse": self.measured,
        }


def describe(surrogate: CrossbarSurrogate) -> str:
    """Return a short label of a surrogate and its settings."""
    if isinstance(surrogate, IRDropSurrogate):
        return f"ir_drop ({surrogate.sweeps} sweeps, damping {surrogate.damping:g})"
    return surrogate.kind


def exact_available() -> bool:
    """Return whether the differentiable exact solver (``spicecross.sim.exact_torch``) is installed."""
    try:
        import spicecross.sim.exact_torch  # noqa: F401
    except ImportError:
        return False
    return True


def _tile_currents(surrogate, voltages, conductances, dtype) -> np.ndarray:
    with torch.no_grad():
        model = copy.deepcopy(surrogate).to(dtype)
        out = model(torch.tensor(voltages, dtype=dtype), torch.tensor(conductances, dtype=dtype))
    return out.currents.double().numpy()


def choose_surrogate(
    crossbar: CrossbarConfig,
    law: FittedLaw,
    tiles: list,
    *,
    tolerance: float = 1e-3,
    dtype: torch.dtype = torch.float32,
) -> SurrogateChoice:
    """Return the cheapest surrogate whose currents are within ``tolerance`` of the exact solution.

    Args:
        crossbar: the circuit (wires and device).
        law: the surrogate's device law (fitted, or the device's own law).
        tiles: sample tiles ``(voltages (batch, rows) in V, conductances (rows, cols) in S)``,
            taken from the network that will be trained.
        tolerance: largest NRMSE of the bit-line currents, over all sample tiles.
        dtype: the dtype training runs in (the relaxation's convergence depends on it).

    Raises:
        ConfigurationError: no candidate converges and the exact surrogate is not installed.
    """
    from spicecross.validation.circuit import tile_spec
    from spicecross.validation.metrics import nrmse

    references = []
    for voltages, conductances in tiles:
        spec = tile_spec(crossbar, conductances)
        references.append(solve_exact(spec, voltages).currents)
    measured = {}
    candidates: list[CrossbarSurrogate] = [DeviceOnlySurrogate(law, crossbar.wiring)]
    if crossbar.has_wires:
        candidates = [
            IRDropSurrogate(law, crossbar.wiring, sweeps=s, damping=d) for s, d in IR_DROP_CANDIDATES
        ]
    for candidate in candidates:
        errors = [
            nrmse(_tile_currents(candidate, v, g, dtype), ref)
            for (v, g), ref in zip(tiles, references, strict=True)
        ]
        error = max(errors)
        label = describe(candidate)
        measured[label] = error if math.isfinite(error) else None
        logger.info("surrogate candidate %s: current NRMSE %.2e against the exact solver", label, error)
        if math.isfinite(error) and error <= tolerance:
            return SurrogateChoice(candidate, label, measured, tolerance)
    if exact_available():
        # The exact surrogate is measured like the others: it must reproduce the device law
        # (per-device n(G) included) to be accepted.
        exact = ExactSurrogate(law, crossbar.wiring)
        errors = [
            nrmse(_tile_currents(exact, v, g, torch.float64), ref)
            for (v, g), ref in zip(tiles, references, strict=True)
        ]
        measured["exact"] = max(errors)
        if max(errors) <= tolerance:
            logger.warning(
                "no relaxation setting reached current NRMSE %.1e; using the exact surrogate", tolerance
            )
            return SurrogateChoice(exact, "exact", measured, tolerance)
    raise ConfigurationError(
        f"no surrogate reaches current NRMSE {tolerance:g} on this circuit (measured: {measured}): lower the "
        "wire resistance or G_on, raise the tolerance, or install a surrogate that models this device"
    )


@dataclass
class Recalibration:
    """A refit of a surrogate on ngspice data: NRMSE of the tiles' currents before and after."""

    before: float
    after: float
    parameters: dict
    seconds: float

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        return {
            "nrmse_before": self.before,
            "nrmse_after": self.after,
            "parameters": self.parameters,
            "seconds": self.seconds,
        }


def recalibrate(
    surrogate: CrossbarSurrogate, tile_records: list, *, max_iter: int = 20, max_vectors: int = 32
) -> tuple[CrossbarSurrogate, Recalibration]:
    """Refit the surrogate's parameters to ngspice currents of the tiles in ``tile_records``.

    Only a surrogate with fitted parameters (the IR-drop surrogate's wire scales) can be
    refitted; any other is returned unchanged with its measured error. The refit is kept
    only if it lowers the error.

    Args:
        surrogate: the model to refit (not modified).
        tile_records: :class:`~spicecross.validation.circuit.TileRecord` objects with
            voltages, conductances and ngspice currents before the ADC.
        max_iter: L-BFGS iterations.
        max_vectors: input vectors per tile used in the fit.
    """
    start = time.perf_counter()
    model = copy.deepcopy(surrogate).double()
    data = [
        (
            torch.tensor(r.voltages[:max_vectors]),
            torch.tensor(r.conductances),
            torch.tensor(r.currents[:max_vectors]),
        )
        for r in tile_records
    ]

    def loss_fn():
        errors = []
        for v, g, ref in data:
            out = model(v, g).currents
            errors.append(torch.sum((out - ref) ** 2) / torch.sum(ref**2))
        return torch.sqrt(torch.stack(errors).mean())

    with torch.no_grad():
        before = float(loss_fn())
    params = [p for p in model.parameters()]
    if not params:
        return surrogate, Recalibration(before, before, {}, time.perf_counter() - start)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.LBFGS(params, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        after = float(loss_fn())
    for p in params:
        p.requires_grad_(False)
    values = {name: float(p.detach()) for name, p in model.named_parameters()}
    if not math.isfinite(after) or after >= before:
        return surrogate, Recalibration(before, before, {}, time.perf_counter() - start)
    return model.to(next(surrogate.parameters()).dtype), Recalibration(
        before, after, values, time.perf_counter() - start
    )
