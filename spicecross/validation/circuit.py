"""Solving a trained crossbar network in ngspice, layer by layer, next to its surrogate.

Every layer's tiles are written as netlists with the devices' actual conductances
(the chip's variability and stuck devices included) and the layer inputs as read
voltages, and solved in ngspice. The tiles' bit-line currents go through the
chip's ADC and are added digitally, the layer output ``y = (I+ − I−)/(k_V·k_G)``
goes through the activation, and the result drives the next layer's netlists.
The surrogate is evaluated twice: end to end on the same examples (its
prediction of accuracy and power), and layer by layer on the inputs that
ngspice produced (its current error on exactly the states ngspice solved).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from spicecross.crossbar.mapping import Tile
from spicecross.crossbar.spec import CrossbarSpec
from spicecross.netlist.writer import format_crossbar_netlist
from spicecross.nn.config import CrossbarConfig
from spicecross.nn.network import CrossbarMLP
from spicecross.sim.result import POWER_PARTS
from spicecross.sim.solve import result_from_vectors
from spicecross.validation.executor import ValidationExecutor
from spicecross.validation.metrics import accuracy, nrmse

logger = logging.getLogger(__name__)

#: ngspice options of validation netlists. They loosen the writer's defaults
#: (reltol 1e-9) to 1e-6, which is still far below any error that matters here
#: and saves about a third of the Newton iterations.
VALIDATION_OPTIONS = {"reltol": 1e-6, "abstol": 1e-12, "vntol": 1e-9}


@dataclass
class TileRecord:
    """One tile of one layer as ngspice solved it.

    Attributes:
        tile: rows and columns of the layer's conductance matrix.
        voltages: read voltages, V. Shape: (batch, tile rows).
        conductances: devices' actual conductances, S. Shape: (tile rows, tile cols).
        currents: bit-line currents before the ADC, A. Shape: (batch, tile cols).
        power: power of the tile's drivers, W. Shape: (batch,).
    """

    tile: Tile
    voltages: np.ndarray
    conductances: np.ndarray
    currents: np.ndarray
    power: np.ndarray


@dataclass
class LayerRecord:
    """One layer solved in ngspice, and the surrogate on the same inputs.

    Attributes:
        inputs: layer inputs in [0, 1] on the ngspice path. Shape: (batch, in).
        y_spice, y_surrogate: layer outputs. Shape: (batch, out).
        currents_spice, currents_surrogate: bit-line currents after the ADC, tiles added, A.
            Shape: (batch, 2·out).
        power_spice, power_surrogate: power of the layer's drivers, W. Shape: (batch,).
        breakdown_spice: where the ngspice power goes (devices, wires, …), W, each (batch,).
        tiles: the tiles as ngspice solved them.
    """

    inputs: np.ndarray
    y_spice: np.ndarray
    y_surrogate: np.ndarray
    currents_spice: np.ndarray
    currents_surrogate: np.ndarray
    power_spice: np.ndarray
    power_surrogate: np.ndarray
    breakdown_spice: dict
    tiles: list = field(default_factory=list)

    @property
    def nrmse_output(self) -> float:
        """NRMSE of the surrogate's layer outputs against ngspice's."""
        return nrmse(self.y_surrogate, self.y_spice)

    @property
    def nrmse_current(self) -> float:
        """NRMSE of the surrogate's bit-line currents against ngspice's."""
        return nrmse(self.currents_surrogate, self.currents_spice)


@dataclass
class CircuitResult:
    """A network solved in ngspice on a set of examples, next to the surrogate's prediction.

    Attributes:
        labels: class of each example. Shape: (batch,).
        logits_spice: logits on the ngspice path. Shape: (batch, classes).
        logits_surrogate: logits of the surrogate network run end to end. Shape: (batch, classes).
        power_spice, power_surrogate: power per example of all layers, W. Shape: (batch,).
        layers: per-layer records.
        ngspice_version: the version that solved the netlists.
        netlists: number of ngspice runs.
        elapsed_s: wall time, s.
    """

    labels: np.ndarray
    logits_spice: np.ndarray
    logits_surrogate: np.ndarray
    power_spice: np.ndarray
    power_surrogate: np.ndarray
    layers: list
    ngspice_version: str
    netlists: int
    elapsed_s: float

    @property
    def accuracy_spice(self) -> float:
        """Accuracy on the ngspice path."""
        return accuracy(self.logits_spice, self.labels)

    @property
    def accuracy_surrogate(self) -> float:
        """Accuracy the surrogate predicts."""
        return accuracy(self.logits_surrogate, self.labels)

    def summary(self) -> dict:
        """Return the JSON-ready figures (no per-example arrays)."""
        breakdown = {
            part: float(np.mean(sum(layer.breakdown_spice[part] for layer in self.layers)))
            for part in POWER_PARTS
        }
        return {
            "examples": int(len(self.labels)),
            "accuracy_spice": self.accuracy_spice,
            "accuracy_surrogate": self.accuracy_surrogate,
            "power_spice_w": float(np.mean(self.power_spice)),
            "power_surrogate_w": float(np.mean(self.power_surrogate)),
            "power_breakdown_spice_w": breakdown,
            "layers": [
                {
                    "nrmse_output": layer.nrmse_output,
                    "nrmse_current": layer.nrmse_current,
                    "power_spice_w": float(np.mean(layer.power_spice)),
                    "power_surrogate_w": float(np.mean(layer.power_surrogate)),
                }
                for layer in self.layers
            ],
            "ngspice_version": self.ngspice_version,
            "netlists": self.netlists,
            "elapsed_s": self.elapsed_s,
        }


def _chunks(batch: int, parts: int, max_vectors: int) -> list[slice]:
    parts = max(parts, math.ceil(batch / max_vectors), 1)
    parts = min(parts, batch)
    bounds = np.linspace(0, batch, parts + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def tile_spec(crossbar: CrossbarConfig, conductances: np.ndarray) -> CrossbarSpec:
    """Return the CrossbarSpec of one tile of ``crossbar`` with devices' actual ``conductances`` (S)."""
    c = crossbar
    return CrossbarSpec(
        conductances,
        device=c.device.model_for(conductances, c.v_ref),
        r_word=c.r_word,
        r_bit=c.r_bit,
        r_source=c.r_source,
        r_sense=c.r_sense,
        drive="west",
    )


def solve_layer_spice(
    model: CrossbarMLP,
    index: int,
    x: np.ndarray,
    executor: ValidationExecutor,
    *,
    options: dict | None = None,
    max_vectors: int = 200,
) -> tuple[list, str]:
    """Solve the tiles of layer ``index`` in ngspice for layer inputs ``x`` (batch, in) in [0, 1].

    Returns:
        (tile records, ngspice version).
    """
    layer = model.layers[index]
    opts = {**VALIDATION_OPTIONS, **(options or {})}
    with torch.no_grad():
        v = layer.read_voltages(torch.as_tensor(x, dtype=torch.float64)).numpy()
    netlists, jobs = [], []
    for tile, g in layer.tile_conductances():
        spec = tile_spec(model.crossbar, g)
        v_tile = v[:, tile.row_start : tile.row_stop]
        for part in _chunks(len(x), executor.slots, max_vectors):
            netlist = format_crossbar_netlist(
                spec,
                v_tile[part],
                options=opts,
                title=f"spicecross layer {index} tile rows "
                f"{tile.row_start}:{tile.row_stop} cols "
                f"{tile.col_start}:{tile.col_stop}",
            )
            netlists.append(netlist)
            jobs.append((tile, g, part))
    start = time.perf_counter()
    outputs = executor.run_all([n.text for n in netlists])
    elapsed = time.perf_counter() - start
    results = [
        result_from_vectors(n.spec, n.topology, n.voltages, out, elapsed, n.options)
        for n, out in zip(netlists, outputs, strict=True)
    ]
    records = []
    for tile, g in layer.tile_conductances():
        parts = [(part, res) for (t, _, part), res in zip(jobs, results, strict=True) if t == tile]
        currents = np.concatenate([res.currents for _, res in parts])
        power = np.concatenate([res.power for _, res in parts])
        breakdown = {k: np.concatenate([res.power_breakdown[k] for _, res in parts]) for k in POWER_PARTS}
        record = TileRecord(tile, v[:, tile.row_start : tile.row_stop], g, currents, power)
        record.breakdown = breakdown  # type: ignore[attr-defined]
        records.append(record)
    return records, outputs[0].version if outputs else "ngspice-unknown"


def validate_circuit(
    model: CrossbarMLP,
    x,
    labels,
    executor: ValidationExecutor,
    *,
    options: dict | None = None,
    max_vectors: int = 200,
) -> CircuitResult:
    """Solve ``model`` in ngspice on examples ``x`` (batch, inputs) in [0, 1] and compare with its surrogate.

    The comparison runs in float64 on a copy of the model, so the caller's model
    (and its dtype) is left as it is.
    """
    start = time.perf_counter()
    model = copy.deepcopy(model).double().eval()
    x = np.asarray(x, dtype=float)
    labels = np.asarray(labels)
    runs_before = executor.runs
    with torch.no_grad():
        end_to_end = model(torch.as_tensor(x))
    layers, version, h = [], "ngspice-unknown", x
    for index, layer in enumerate(model.layers):
        records, version = solve_layer_spice(
            model, index, h, executor, options=options, max_vectors=max_vectors
        )
        with torch.no_grad():
            _, k_g = layer.device_conductances()
            y_spice, currents = layer.assemble([torch.as_tensor(r.currents) for r in records], k_g)
            surrogate = layer(torch.as_tensor(h))
        breakdown = {k: sum(r.breakdown[k] for r in records) for k in POWER_PARTS}
        layers.append(
            LayerRecord(
                inputs=h,
                y_spice=y_spice.numpy(),
                y_surrogate=surrogate.y.numpy(),
                currents_spice=currents.numpy(),
                currents_surrogate=surrogate.currents.numpy(),
                power_spice=sum(r.power for r in records),
                power_surrogate=surrogate.power.numpy(),
                breakdown_spice=breakdown,
                tiles=records,
            )
        )
        last = index == len(model.layers) - 1
        h = y_spice.numpy() if last else model.activation(y_spice).numpy()
        logger.info(
            "layer %d solved in ngspice: output NRMSE of the surrogate %.2e", index, layers[-1].nrmse_output
        )
    return CircuitResult(
        labels=labels,
        logits_spice=h,
        logits_surrogate=end_to_end.logits.numpy(),
        power_spice=sum(layer.power_spice for layer in layers),
        power_surrogate=end_to_end.power.numpy(),
        layers=layers,
        ngspice_version=version,
        netlists=executor.runs - runs_before,
        elapsed_s=time.perf_counter() - start,
    )
