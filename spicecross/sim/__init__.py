"""Simulation engines: ngspice (shared library or batch mode) and the exact nodal solver."""
