"""Reader of binary ngspice raw files, as written by ``ngspice -b -r FILE``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spicecross.errors import SimulationError


def _normalise(name: str) -> str:
    """Map raw-file vector names to the names the shared library uses.

    ``v(node)`` becomes ``node`` and ``i(vsrc)`` becomes ``vsrc#branch``.
    """
    name = name.lower()
    if name.startswith("v(") and name.endswith(")"):
        return name[2:-1]
    if name.startswith("i(") and name.endswith(")"):
        return name[2:-1] + "#branch"
    return name


def read_raw(path: str | Path) -> dict[str, np.ndarray]:
    """Read the last plot of a raw file into ``{vector name: values}``.

    Only real data is supported (operating-point and DC results).

    Raises:
        SimulationError: if the file is missing, truncated or complex-valued.
    """
    data = Path(path).read_bytes()
    plots = []
    pos = 0
    while pos < len(data):
        header = {}
        names: list[str] = []
        while True:
            end = data.find(b"\n", pos)
            if end < 0:
                raise SimulationError(f"raw file {path} is truncated in its header")
            line = data[pos:end].decode("latin-1")
            pos = end + 1
            if line.startswith("Variables:"):
                n_vars = int(header["no. variables"])
                for _ in range(n_vars):
                    end = data.find(b"\n", pos)
                    fields = data[pos:end].decode("latin-1").split()
                    pos = end + 1
                    names.append(fields[1])
                continue
            if line.startswith(("Binary:", "Values:")):
                binary = line.startswith("Binary:")
                break
            key, _, value = line.partition(":")
            header[key.strip().lower()] = value.strip()
        if "complex" in header.get("flags", "").lower():
            raise SimulationError(f"raw file {path} holds complex data, which spicecross does not read")
        n_vars, n_points = int(header["no. variables"]), int(header["no. points"])
        if binary:
            size = n_vars * n_points * 8
            if pos + size > len(data):
                raise SimulationError(f"raw file {path} is truncated: expected {n_points} points "
                                      f"of {n_vars} variables")
            values = np.frombuffer(data, dtype="<f8", count=n_vars * n_points, offset=pos)
            values = values.reshape(n_points, n_vars)
            pos += size
        else:
            raise SimulationError(f"raw file {path} is in ASCII format; spicecross reads binary raw "
                                  "files (unset the ngspice variable filetype or set it to binary)")
        plots.append({_normalise(n): values[:, k].copy() for k, n in enumerate(names)})
        while pos < len(data) and data[pos:pos + 1] in (b"\n", b"\r"):
            pos += 1
    if not plots:
        raise SimulationError(f"raw file {path} contains no plot")
    return plots[-1]
