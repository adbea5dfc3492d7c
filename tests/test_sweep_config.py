"""Sweep configs, job generation and convergence aids (no ngspice needed, except the option check)."""

import subprocess
import textwrap

import numpy as np
import pytest

from spicecross.resources import data_dir
from spicecross.sweep import load_config, make_jobs, make_state, parse_config
from spicecross.sweep.attempt import CONVERGENCE_AIDS, attempt_options
from spicecross.sweep.config import NGSPICE_OPTIONS

BASE = {"device": {"name": "sinh", "params": {"v0": 0.15}}, "array": {"sizes": [[3, 4]]}}


def config_with(**tables):
    data = {key: dict(value) for key, value in BASE.items()}
    for table, values in tables.items():
        data.setdefault(table, {}).update(values)
    return data


@pytest.mark.parametrize("tables, fragments", [
    ({"array": {"r_wrod": [1.0]}}, ["[array] r_wrod", "did you mean 'r_word'", "valid keys"]),
    ({"sweep": {"seeed": 1}}, ["[sweep] seeed", "did you mean 'seed'"]),
    ({"ngspice": {"options": {"reltoll": 1e-6}}}, ["reltoll", "did you mean 'reltol'"]),
    ({"array": {"r_word": [1.0, -2.0]}}, ["[array] r_word = -2.0", ">= 0", "ohm"]),
    ({"states": {"g_min": 0.0}}, ["[states] g_min = 0.0", "> 0", "S"]),
    ({"states": {"g_min": 1e-3, "g_max": 1e-4}}, ["g_max = 0.0001 S is below g_min"]),
    ({"states": {"kinds": ["random", "chessboard"]}}, ["'chessboard'", "checkerboard"]),
    ({"states": {"count": 0}}, ["[states] count = 0", ">= 1"]),
    ({"inputs": {"vectors_per_job": 2.5}}, ["vectors_per_job = 2.5", "whole number"]),
    ({"inputs": {"v_max": -0.1}}, ["[inputs] v_max = -0.1", "> 0", "V"]),
    ({"inputs": {"source": "file"}}, ["source = 'file' needs [inputs] file"]),
    ({"ngspice": {"mode": "sharde"}}, ["mode = 'sharde'", "did you mean 'shared'"]),
    ({"ngspice": {"timeout": 0}}, ["[ngspice] timeout = 0", "> 0", "s"]),
    ({"ngspice": {"retries": -1}}, ["[ngspice] retries = -1", ">= 0"]),
    ({"ngspice": {"options": {"itl1": 10.5}}}, ["itl1 = 10.5", "whole number"]),
    ({"executor": {"workers": 0}}, ["[executor] workers = 0", ">= 1"]),
    ({"executor": {"scheduler": "tcp://127.0.0.1:99999"}}, ["[executor]", "invalid port '99999'", "1 to 65535"]),
    ({"executor": {"scheduler": "tcp://127.0.0.1"}}, ["[executor]", "PROTOCOL://HOST:PORT"]),
    ({"array": {"sizes": [[3, 0]]}}, ["[array] sizes", "1..4096"]),
    ({"array": {"drive": "east"}}, ["drive = 'east'", "west, both"]),
    ({"device": {"name": "snh"}}, ["'snh'", "did you mean 'sinh'"]),
    ({"device": {"params": {"v0": -1.0}}}, ["[device] is invalid", "v0"]),
    ({"extra": {}}, ["unknown key 'extra'"]),
])
def test_config_errors_name_key_and_fix(tables, fragments):
    with pytest.raises(ValueError) as info:
        parse_config(config_with(**tables))
    for fragment in fragments:
        assert fragment in str(info.value)


def test_config_missing_tables():
    with pytest.raises(ValueError, match=r"\[device\] is missing"):
        parse_config({"array": {"sizes": [4]}})
    with pytest.raises(ValueError, match=r"\[array\] is missing"):
        parse_config({"device": {"name": "linear"}})
    with pytest.raises(ValueError, match=r"sizes is missing"):
        parse_config({"device": {"name": "linear"}, "array": {}})


def test_config_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[device]\nname = 'sinh'\n[array]\nsizes = [4\n")
    with pytest.raises(ValueError, match="bad.toml: invalid TOML"):
        load_config(path)
    path.write_text("[device]\nname = 'sinh'\n[array]\nsizes = [4]\nr_bti = 1.0\n")
    with pytest.raises(ValueError, match=r"bad.toml: unknown key '\[array\] r_bti'"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_config_defaults_and_paths(tmp_path):
    np.save(tmp_path / "inputs.npy", np.random.default_rng(0).uniform(0.0, 0.5, (5, 3)))
    (tmp_path / "c.toml").write_text(textwrap.dedent("""
        [sweep]
        cache = false
        [device]
        name = "linear"
        [array]
        sizes = [3, [3, 2]]
        r_word = 1.5
        [inputs]
        file = "inputs.npy"
        vectors_per_job = 2
    """))
    config = load_config(tmp_path / "c.toml")
    assert config.name == "c"
    assert config.sizes == ((3, 3), (3, 2))
    assert config.r_word == (1.5,)
    assert config.cache is None
    assert config.input_source == "file"
    assert config.input_file == tmp_path / "inputs.npy"
    assert config.mode == "batch"
    assert config.workers == 2
    jobs = make_jobs(config)
    # Two sizes × one random state × ceil(5 / 2) input batches.
    assert len(jobs) == 6
    assert [job.batch for job in jobs[:3]] == [2, 2, 1]


def test_example_configs_parse():
    folder = data_dir("calibration")
    for name in ("sweep-example.toml", "sweep-quick.toml"):
        config = load_config(folder / name)
        assert make_jobs(config)


def test_job_ids_stable_and_content_based():
    config = parse_config(config_with(array={"r_word": [1.0, 2.0]}, states={"count": 2},
                                      inputs={"batches": 2}))
    jobs = make_jobs(config)
    assert len(jobs) == 2 * 2 * 2
    assert len({job.job_id for job in jobs}) == len(jobs)
    assert [job.job_id for job in make_jobs(config)] == [job.job_id for job in jobs]
    # Adding a resistance value keeps every existing job (states do not depend on position).
    extended = make_jobs(parse_config(config_with(array={"r_word": [0.5, 1.0, 2.0]}, states={"count": 2},
                                                  inputs={"batches": 2})))
    assert {job.job_id for job in jobs} <= {job.job_id for job in extended}
    # The same state is used at every resistance value.
    by_r = {}
    for job in jobs:
        by_r.setdefault(job.labels["r_word_ohm"], []).append(job.conductances)
    for a, b in zip(by_r[1.0], by_r[2.0], strict=True):
        np.testing.assert_array_equal(a, b)
    other_seed = make_jobs(parse_config(config_with(sweep={"seed": 5}, array={"r_word": [1.0, 2.0]},
                                                    states={"count": 2}, inputs={"batches": 2})))
    assert not {job.job_id for job in jobs} & {job.job_id for job in other_seed}


def test_identical_jobs_rejected(tmp_path):
    np.save(tmp_path / "inputs.npy", np.full((4, 3), 0.2))
    data = config_with(inputs={"file": "inputs.npy", "vectors_per_job": 2})
    with pytest.raises(ValueError, match="are identical"):
        make_jobs(parse_config(data, source=tmp_path / "c.toml"))


def test_job_pickles_with_user_subckt(tmp_path):
    import pickle

    (tmp_path / "dev.lib").write_text(".subckt mydev a b g=1e-4\nr1 a b {1/g}\n.ends mydev\n")
    config = parse_config({"device": {"name": "dev.lib"}, "array": {"sizes": [2]}},
                          source=tmp_path / "c.toml")
    job = make_jobs(config)[0]
    copy = pickle.loads(pickle.dumps(job))
    assert copy.device["subckt_text"].startswith(".subckt mydev")
    assert copy.netlist().text == job.netlist().text


@pytest.mark.parametrize("kind, expected", [
    ("all-on", [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]),
    ("all-off", [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]),
    ("checkerboard", [[2.0, 1.0, 2.0], [1.0, 2.0, 1.0]]),
    ("ramp", [[1.0, 1.2, 1.4], [1.6, 1.8, 2.0]]),
])
def test_structured_states(kind, expected):
    np.testing.assert_allclose(make_state(kind, 2, 3, 1.0, 2.0), expected)


def test_random_state_in_range():
    state = make_state("random", 20, 30, 1e-5, 1e-4, np.random.default_rng(0))
    assert state.shape == (20, 30)
    assert state.min() >= 1e-5
    assert state.max() <= 1e-4


def test_aids_never_tighten_tolerances():
    assert attempt_options({}, 0) == {"reltol": 1e-9, "abstol": 1e-15, "vntol": 1e-12}
    last = attempt_options({"reltol": 1e-3}, 3)
    assert last["reltol"] == 1e-3
    assert last["abstol"] == 1e-12
    assert attempt_options({}, 99) == attempt_options({}, len(CONVERGENCE_AIDS) - 1)


@pytest.mark.ngspice
def test_aid_options_take_effect_in_ngspice(tmp_path):
    """ngspice ignores unknown .options names silently: check its ``option`` listing."""
    options = {**attempt_options({}, len(CONVERGENCE_AIDS) - 1), "itl2": 321}
    assert set(options) <= set(NGSPICE_OPTIONS)
    cards = " ".join(f"{k}={v}" for k, v in options.items())
    (tmp_path / "probe.cir").write_text(f"probe\nv1 a 0 1\nr1 a 0 1\n.options {cards}\n"
                                        ".control\nop\noption\n.endc\n.end\n")
    out = subprocess.run(["ngspice", "-b", "-n", "probe.cir"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}).stdout
    for line in ("itl1 (DC iterations) = 1000", "itl2 (DC transfer curve iterations) = 321",
                 "gminsteps = 20", "srcsteps = 20", "reltol      (current) = 1e-06",
                 "abstol      (current) = 1e-12", "vntol       (voltage) = 1e-09"):
        assert line in out, f"{line!r} not in ngspice's option listing:\n{out}"
