"""The result of solving a crossbar for a batch of input vectors, from either engine."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Keys of :attr:`SolveResult.power_breakdown`, in the order they are reported.
POWER_PARTS = ("devices", "word_wires", "bit_wires", "source", "sense")


@dataclass
class SolveResult:
    """Currents, voltages and power of a crossbar for a batch of input vectors.

    Attributes:
        currents: bit-line currents, positive into the sense node, (batch, cols), A.
        driver_currents: current out of each driver into its word line, (batch, rows, ends), A.
        power: power delivered by the drivers, Σ V_source·I_source, (batch,), W.
        power_breakdown: where that power is dissipated, each (batch,), W: ``devices``,
            ``word_wires``, ``bit_wires``, ``source`` and ``sense`` resistances. The parts add
            up to ``power``.
        wl_voltages: word-line node voltages at the crosspoints, (batch, rows, cols), V.
        bl_voltages: bit-line node voltages at the crosspoints, (batch, rows, cols), V.
        engine: ``exact`` or ``ngspice``.
        elapsed_s: wall time of the solve, s.
        info: engine details (ngspice version and options, Newton iterations, …).
    """

    currents: np.ndarray
    driver_currents: np.ndarray
    power: np.ndarray
    power_breakdown: dict
    wl_voltages: np.ndarray
    bl_voltages: np.ndarray
    engine: str
    elapsed_s: float
    info: dict = field(default_factory=dict)

    @property
    def batch(self) -> int:
        """Number of input vectors."""
        return self.currents.shape[0]

    def to_json_dict(self, *, voltages: bool = False) -> dict:
        """Return a JSON-ready dict: one entry per input vector, plus engine details."""
        vectors = []
        for b in range(self.batch):
            entry = {"currents_a": self.currents[b].tolist(),
                     "power_w": float(self.power[b]),
                     "power_breakdown_w": {k: float(v[b]) for k, v in self.power_breakdown.items()}}
            if voltages:
                entry["wl_voltages_v"] = self.wl_voltages[b].tolist()
                entry["bl_voltages_v"] = self.bl_voltages[b].tolist()
            vectors.append(entry)
        return {"engine": self.engine, "elapsed_s": self.elapsed_s, "n_vectors": self.batch,
                "vectors": vectors, "info": self.info}
