import configparser
from pathlib import Path

from setuptools import find_packages

REPO = Path(__file__).resolve().parent.parent


def test_setup_cfg_lists_every_subpackage():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = set(find_packages(str(REPO), include=["spicecross", "spicecross.*"]))
    assert found - listed == set()


def test_shipped_data_is_packaged():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    mapping = config["options"]["package_dir"]
    assert "spicecross.resources.device_models = device_models" in mapping
    assert "spicecross.resources.calibration = calibration" in mapping
    assert sorted(p.name for p in (REPO / "device_models").glob("*.lib")) == [
        "linear.lib", "poole_frenkel.lib", "power_law.lib", "sinh.lib"]
