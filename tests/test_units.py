import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spicecross.units import format_value, parse_value


@pytest.mark.parametrize("text, expected", [
    ("1M", 1e-3), ("1m", 1e-3), ("1MEG", 1e6), ("1meg", 1e6), ("1e6", 1e6), ("10k", 1e4),
    ("10kOhm", 1e4), ("2.5u", 2.5e-6), ("3n", 3e-9), ("4p", 4e-12), ("5f", 5e-15), ("1g", 1e9),
    ("1t", 1e12), ("1mil", 25.4e-6), ("-2.5e-3", -2.5e-3), (".5", 0.5), ("1Megohm", 1e6), ("7V", 7.0),
])
def test_parse_value_suffixes(text, expected):
    assert parse_value(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "e5", "--1"])
def test_parse_value_rejects_garbage(text):
    with pytest.raises(ValueError, match="invalid SPICE number"):
        parse_value(text)


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_format_value_round_trip(value):
    text = format_value(value)
    assert parse_value(text) == value


@given(st.floats(min_value=1e-18, max_value=1e18))
def test_format_value_never_writes_a_suffix(value):
    text = format_value(value)
    assert not any(c.isalpha() and c.lower() != "e" for c in text)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_format_value_rejects_non_finite(value):
    with pytest.raises(ValueError, match="finite"):
        format_value(value)


def test_format_value_mega_is_exponent():
    assert format_value(1e6) == "1e+06"
