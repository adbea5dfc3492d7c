"""Unknown keys in configuration tables."""

import pytest

from spicecross.configkeys import check_keys, did_you_mean


def test_misspelt_key_names_closest():
    with pytest.raises(ValueError) as info:
        check_keys({"rows": 4, "colls": 4}, ("rows", "cols"), where="a.toml", table="tiles")
    message = str(info.value)
    assert message.startswith("a.toml: unknown key '[tiles] colls'")
    assert "(did you mean 'cols'?)" in message
    assert message.endswith("valid keys are cols, rows")


def test_valid_keys_pass():
    assert check_keys({"rows": 4}, ("rows", "cols"), where="a.toml", table="tiles") is None


def test_error_class_is_used():
    class Custom(ValueError):
        pass

    with pytest.raises(Custom, match="unknown key 'zzz'"):
        check_keys({"zzz": 1}, ("rows",), where="x", table="", error=Custom)


def test_no_close_match_no_hint():
    assert did_you_mean("zzz", ["rows", "cols"]) == ""
