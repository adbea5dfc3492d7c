"""An independent dense nodal solver for small linear crossbars, used as a test reference.

It builds the conductance matrix element by element from the geometry stated in
docs/geometry.md, without spicecross's topology code, and solves it with numpy.
"""

from __future__ import annotations

import numpy as np


def dense_linear_crossbar(g, v, r_word, r_bit, r_source=0.0, r_sense=0.0):
    """Return bit-line currents (batch, cols) in A of a west-driven linear crossbar.

    All resistances are positive scalars (Ω); ``g`` is (rows, cols) in S, ``v`` is (batch, rows) in V.
    """
    rows, cols = g.shape
    # Unknown nodes: wl(i, j), bl(i, j), in(i) after the source resistance, sns(j) after the last
    # bit-line segment. Fixed: drivers (v) and virtual grounds (0 V).
    def wl(i, j): return i * cols + j
    def bl(i, j): return rows * cols + i * cols + j
    def inp(i): return 2 * rows * cols + i
    def sns(j): return 2 * rows * cols + rows + j
    n = 2 * rows * cols + rows + cols
    m = np.zeros((n, n))
    rhs_of_driver = np.zeros((n, rows))

    def stamp(a, b, cond):
        m[a, a] += cond
        m[b, b] += cond
        m[a, b] -= cond
        m[b, a] -= cond

    for i in range(rows):
        # Driver → in(i) through r_source: the driver end is fixed.
        m[inp(i), inp(i)] += 1 / r_source
        rhs_of_driver[inp(i), i] += 1 / r_source
        stamp(inp(i), wl(i, 0), 1 / r_word)
        for j in range(1, cols):
            stamp(wl(i, j - 1), wl(i, j), 1 / r_word)
        for j in range(cols):
            stamp(wl(i, j), bl(i, j), g[i, j])
    for j in range(cols):
        for i in range(rows - 1):
            stamp(bl(i, j), bl(i + 1, j), 1 / r_bit)
        stamp(bl(rows - 1, j), sns(j), 1 / r_bit)
        m[sns(j), sns(j)] += 1 / r_sense  # sense resistance to the 0 V virtual ground
    x = np.linalg.solve(m, rhs_of_driver @ v.T).T
    return np.stack([x[:, sns(j)] / r_sense for j in range(cols)], axis=1)
