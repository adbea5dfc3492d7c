"""spicecross: circuit-level co-simulation of memristive crossbar neural networks.

Data flows one way through the subpackages: ``devices`` and ``crossbar`` (device
models and array specs) → ``netlist`` (ngspice netlists, inspection) → ``sim``
(ngspice and the exact nodal solver) → ``surrogates`` → ``nn`` → ``validation``,
with the command line (``spicecross.cli``) on top.

Importing this package is light: torch, PySpice and matplotlib load only where used.
"""

__version__ = "0.1.0"
