"""A multilayer perceptron whose layers are crossbars, and its model files.

Between layers the activations are computed digitally (sigmoid by default), so
every layer receives inputs in [0, 1], which become read voltages of 0 to ``k_V``.
The last layer's outputs are the logits.

A model file (``.pt``) contains the weights, the surrogate's fitted parameters and
the chip draw, plus the whole configuration as JSON-ready data. It is read with
``torch.load(weights_only=True)``, which rejects arbitrary pickled objects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from spicecross.errors import SpicecrossError
from spicecross.nn.config import ConfigurationError, CrossbarConfig, config_hash
from spicecross.nn.layer import CrossbarLinear
from spicecross.surrogates import CrossbarSurrogate

logger = logging.getLogger(__name__)

MODEL_FORMAT = "spicecross-model/1"
ACTIVATIONS = {"sigmoid": torch.sigmoid}


class ModelConfigError(SpicecrossError):
    """A model file does not match the configuration it is loaded into, or is not a model file."""


@dataclass(frozen=True)
class NetworkConfig:
    """Layer sizes and activation of a crossbar MLP.

    Attributes:
        sizes: ``(inputs, hidden…, outputs)``, for example ``(64, 25, 10)``.
        activation: activation between layers; ``sigmoid`` keeps layer inputs in [0, 1].
    """

    sizes: tuple = (64, 25, 10)
    activation: str = "sigmoid"

    def __post_init__(self):
        sizes = tuple(int(s) for s in self.sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigurationError(
                f"network sizes {list(self.sizes)} are invalid: give at least an input "
                "and an output size, each >= 1, for example [64, 25, 10]"
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigurationError(
                f"activation {self.activation!r} is unknown: valid activations are "
                f"{sorted(ACTIVATIONS)} (its outputs must lie in [0, 1])"
            )
        object.__setattr__(self, "sizes", sizes)

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        return {"sizes": list(self.sizes), "activation": self.activation}


class NetworkOutput(NamedTuple):
    """Output of a crossbar network.

    Attributes:
        logits: outputs of the last layer. Shape: (batch, classes).
        power: power of all layers' drivers per example, W. Shape: (batch,).
        layer_power: power of each layer, W. Shape: (layers, batch).
    """

    logits: torch.Tensor
    power: torch.Tensor
    layer_power: torch.Tensor


class CrossbarMLP(nn.Module):
    """A multilayer perceptron of :class:`~spicecross.nn.layer.CrossbarLinear` layers.

    Args:
        network: sizes and activation.
        crossbar: the circuit of every layer (one power level).
        surrogate: the tile model of the crossbar forward pass (each layer gets a copy).
        seed: seed of the initial weights.
    """

    def __init__(
        self, network: NetworkConfig, crossbar: CrossbarConfig, surrogate: CrossbarSurrogate, *, seed: int = 0
    ):
        super().__init__()
        self.network = network
        self.crossbar = crossbar
        self.seed = seed
        generator = torch.Generator().manual_seed(seed)
        sizes = network.sizes
        self.layers = nn.ModuleList(
            CrossbarLinear(sizes[i], sizes[i + 1], crossbar, surrogate, layer_index=i, generator=generator)
            for i in range(len(sizes) - 1)
        )
        self.activation = ACTIVATIONS[network.activation]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Return the weights and biases of every layer (the surrogates' parameters excluded)."""
        return [p for layer in self.layers for p in layer.weight_parameters()]

    def set_surrogate(self, surrogate: CrossbarSurrogate, layer: int | None = None) -> None:
        """Use ``surrogate`` in every layer, or in layer ``layer`` only."""
        targets = self.layers if layer is None else [self.layers[layer]]
        for target in targets:
            target.set_surrogate(surrogate)

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        """Run every layer on its crossbar (through the surrogates). Shape: ``x`` is (batch, inputs)."""
        powers = []
        h = x
        for i, layer in enumerate(self.layers):
            out = layer(h)
            powers.append(out.power)
            h = out.y if i == len(self.layers) - 1 else self.activation(out.y)
        layer_power = torch.stack(powers)
        return NetworkOutput(h, layer_power.sum(dim=0), layer_power)

    def forward_ideal(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits of the ideal network (``x·W + b`` in every layer, computed digitally)."""
        h = x
        for i, layer in enumerate(self.layers):
            h = layer.forward_ideal(h)
            if i < len(self.layers) - 1:
                h = self.activation(h)
        return h

    def operations_per_inference(self) -> int:
        """Return the arithmetic operations of one inference: 2 per weight and bias (multiply, add)."""
        return sum(2 * (layer.in_features + 1) * layer.out_features for layer in self.layers)

    # ------------------------------------------------------------- files --

    def config(self) -> dict:
        """Return the configuration that rebuilds this network (without its weights)."""
        return {
            "network": self.network.to_dict(),
            "crossbar": self.crossbar.to_dict(),
            "surrogate": self.layers[0].surrogate.config(),
            "seed": self.seed,
        }


def _surrogate_from_config(config: dict) -> CrossbarSurrogate:
    from spicecross.surrogates.io import build_surrogate

    return build_surrogate(config)


def save_model(model: CrossbarMLP, path: str | Path, *, metadata: dict | None = None) -> Path:
    """Write ``model`` to ``path`` (``.pt``) atomically; return the path.

    ``metadata`` (JSON-ready: data set, training kind, history…) is stored beside the
    configuration and returned by :func:`load_model`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = model.config()
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    surrogates = [layer.surrogate.config() for layer in model.layers]
    payload = {
        "format": MODEL_FORMAT,
        "config": config,
        "config_hash": config_hash(_comparable(config)),
        "layer_surrogates": surrogates,
        "state": state,
        "metadata": metadata or {},
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def _comparable(config: dict) -> dict:
    """The part of a configuration that must match for a model file to be loaded into it."""
    return {"network": config["network"], "crossbar": config["crossbar"]}


@dataclass
class LoadedModel:
    """A model read from a file: the network, its configuration and the stored metadata."""

    model: CrossbarMLP
    config: dict
    metadata: dict = field(default_factory=dict)


def load_model(path: str | Path, *, expected: dict | None = None) -> LoadedModel:
    """Read a model file written by :func:`save_model`.

    Args:
        path: the ``.pt`` file.
        expected: a configuration (``{"network": …, "crossbar": …}``, as
            :meth:`CrossbarMLP.config` returns) that the file must have been saved with.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a folder.
        OSError: the file cannot be read, for example for lack of permission.
        ModelConfigError: not a spicecross model, or saved with another network or
            crossbar configuration than ``expected``.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a folder, not a model file: give one of the .pt files in the models "
            "folder of a report folder"
        )
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    with path.open("rb") as handle:  # raises OSError if the file cannot be read at all
        start = handle.read(64)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types, OSError included, for a non-model file
        # torch's own message advises weights_only=False, which is unsafe for files from other
        # people, so only the type of its error is kept and the chained exception is dropped.
        raise ModelConfigError(
            f"{path} is not a spicecross model file: torch.load could not read it "
            f"({type(exc).__name__}), and {_describe_file_start(start)}. Give a model .pt "
            "file written by spicecross, such as one of the models/*.pt files in a report folder "
            "of 'spicecross run', or a file written by save_model()"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ModelConfigError(
            f"{path} is not a spicecross model file (format {found!r}, expected {MODEL_FORMAT!r})"
        )
    config = payload["config"]
    if expected is not None:
        want, have = _comparable(expected), _comparable(config)
        if config_hash(want) != config_hash(have):
            differences = _differences(want, have)
            raise ModelConfigError(
                f"{path} was saved with another configuration ({'; '.join(differences[:4])}): load it "
                "with the configuration it was trained for, or retrain for this one"
            )
    crossbar = CrossbarConfig.from_dict(config["crossbar"])
    network = NetworkConfig(**config["network"])
    model = CrossbarMLP(network, crossbar, _surrogate_from_config(config["surrogate"]), seed=config["seed"])
    stored = payload.get("layer_surrogates") or [config["surrogate"]] * len(model.layers)
    for layer, surrogate_config in zip(model.layers, stored, strict=True):
        layer.set_surrogate(_surrogate_from_config(surrogate_config))
    try:
        model.load_state_dict(payload["state"])
    except RuntimeError as exc:
        raise ModelConfigError(
            f"{path}: the stored weights do not fit the stored configuration ({exc})"
        ) from exc
    return LoadedModel(model, config, payload.get("metadata", {}))


def _describe_file_start(start: bytes) -> str:
    """Return a guess, from its first bytes, at what a file that torch.load cannot read is."""
    if not start:
        return "it is empty"
    if start.lstrip()[:1] in (b"{", b"["):
        return "it starts like a JSON file, such as a report.json"
    return "it may be a file of another kind, or a damaged or truncated model file"


def _differences(want: dict, have: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(want) | set(have)):
        a, b = want.get(key), have.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} is {b!r} in the file but {a!r} here")
    return out
