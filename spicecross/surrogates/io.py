"""Saving and loading surrogates: a JSON file (configuration and provenance) and an .npz of parameters.

Neither file is a pickle, so a surrogate from someone else can be loaded safely.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from spicecross.surrogates.law import FittedLaw
from spicecross.surrogates.models import SURROGATE_KINDS, CrossbarSurrogate, Wiring

FORMAT = "spicecross-surrogate/1"


def save_surrogate(model: CrossbarSurrogate, path: str | Path, provenance: dict | None = None) -> Path:
    """Write ``model`` to ``path`` (``NAME.json``, with ``NAME.npz`` beside it); return the JSON path."""
    from spicecross.netlist.writer import write_text_atomic

    path = Path(path).with_suffix(".json")
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    npz = path.with_suffix(".npz")
    tmp = npz.with_name(f".{npz.name}.tmp.npz")
    np.savez(tmp, **state)
    tmp.replace(npz)
    payload = {"format": FORMAT, "config": model.config(), "state_keys": sorted(state),
               "provenance": provenance or {}}
    write_text_atomic(path, json.dumps(payload, indent=1))
    return path


def build_surrogate(config: dict) -> CrossbarSurrogate:
    """Build a surrogate (untrained parameters) from a configuration dict."""
    kind = config.get("kind")
    cls = SURROGATE_KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown surrogate kind {kind!r}: known kinds are {sorted(SURROGATE_KINDS)}")
    law = FittedLaw.from_dict(config["law"])
    wiring = Wiring.from_dict(config["wiring"])
    extra = {k: config[k] for k in ("sweeps", "damping", "hidden") if k in config}
    if kind == "learned":
        base = build_surrogate(config["base"])
        return cls(base, **extra)
    return cls(law, wiring, **extra)


def load_surrogate(path: str | Path) -> tuple[CrossbarSurrogate, dict]:
    """Load a surrogate saved by :func:`save_surrogate`; return (model, provenance)."""
    path = Path(path).with_suffix(".json")
    if not path.exists():
        raise FileNotFoundError(f"surrogate {path} not found")
    payload = json.loads(path.read_text())
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a spicecross surrogate (format {payload.get('format')!r}, "
                         f"expected {FORMAT!r})")
    model = build_surrogate(payload["config"])
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
        state = {k: torch.as_tensor(data[k]) for k in payload["state_keys"]}
    model.load_state_dict(state)
    return model, payload.get("provenance", {})
