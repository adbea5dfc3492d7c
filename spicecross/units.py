"""Reading and writing SPICE numbers.

ngspice scales a number by a suffix letter, case-insensitively: ``f`` 1e-15,
``p`` 1e-12, ``n`` 1e-9, ``u`` 1e-6, ``m`` 1e-3 (milli, not mega), ``k`` 1e3,
``meg`` 1e6, ``g`` 1e9, ``t`` 1e12, plus ``mil`` (25.4e-6). ngspice 44 also reads
``a`` as atto (1e-18), which ngspice 39 ignores; this module follows ngspice 44,
and the netlist lint warns about the suffix. Letters after the suffix, such as a
unit (``10kOhm``), are ignored. spicecross writes numbers as
plain exponent floats, so a value it writes never depends on these rules.
"""

from __future__ import annotations

import math
import re

import numpy as np

SI_SCALE = {
    "t": 1e12,
    "g": 1e9,
    "meg": 1e6,
    "k": 1e3,
    "mil": 25.4e-6,
    "m": 1e-3,
    "u": 1e-6,
    "n": 1e-9,
    "p": 1e-12,
    "f": 1e-15,
    "a": 1e-18,
}

_NUMBER = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z_µ]*)$"
)


def parse_value(text: str) -> float:
    """Parse a SPICE number such as ``10k``, ``1MEG``, ``2.5e-3`` or ``1M``.

    ``m``/``M`` is milli and ``meg`` is mega, as in ngspice. Trailing letters
    after the scale suffix (units) are ignored.

    Raises:
        ValueError: if ``text`` is not a number in SPICE syntax.
    """
    match = _NUMBER.match(text.strip())
    if match is None:
        raise ValueError(f"invalid SPICE number {text!r}: expected digits with an "
                         "optional exponent and scale suffix, such as 10k or 1e-3")
    number = float(match.group(1))
    suffix = match.group(2).lower()
    for key in ("meg", "mil"):
        if suffix.startswith(key):
            return number * SI_SCALE[key]
    if suffix and suffix[0] in SI_SCALE:
        return number * SI_SCALE[suffix[0]]
    return number


def format_value(value: float) -> str:
    """Format a float as the shortest plain exponent string that reads back exactly.

    The result, such as ``1e+06`` or ``2.5e-05``, has no scale suffix, so
    ngspice cannot mistake mega for milli.

    Raises:
        ValueError: if ``value`` is NaN or infinite.
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value!r} into a netlist: every value must "
                         "be a finite number")
    if value == 0.0:
        return "0"
    return np.format_float_scientific(value, unique=True, trim="-")
