"""workbench.catalog: dataset descriptions, options and their errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.catalog import DATASET_NAMES, DATASET_OPTIONS, check_options, dataset_info, default_options
from workbench.spec import SpecError


def test_known_datasets_and_shapes():
    expected = {
        "digits": ("classification", (1, 8, 8), 10, True),
        "parity": ("classification", (8,), 2, True),
        "checkerboard": ("classification", (2,), 2, True),
        "spirals": ("classification", (2,), 2, True),
        "diabetes": ("regression", (10,), 1, True),
        "mnist": ("classification", (1, 28, 28), 10, False),
        "fashion-mnist": ("classification", (1, 28, 28), 10, False),
        "cifar10": ("classification", (3, 32, 32), 10, False),
    }
    assert set(DATASET_NAMES) == set(expected)
    for name, (task, shape, out, embedded) in expected.items():
        info = dataset_info(name)
        assert (info.task, info.input_shape, info.output_dim, info.embedded) == (task, shape, out, embedded)
        assert info.name == name and info.description


def test_options_change_shapes():
    assert dataset_info("parity", {"n_inputs": 12, "k_active": 5}).input_shape == (12,)
    assert dataset_info("spirals", {"n_arms": 3}).output_dim == 3
    assert default_options("parity")["k_active"] == 3
    assert default_options("mnist") == {}
    for name, schema in DATASET_OPTIONS.items():
        for key, spec in schema.items():
            assert spec.name == key and spec.check(spec.default) is None, (name, key)


def test_unknown_dataset_suggests_closest():
    with pytest.raises(SpecError) as err:
        dataset_info("mnsit")
    problem = err.value.problems[0]
    assert problem.path == "task.dataset" and "'mnist'" in problem.fix


@pytest.mark.parametrize("options, path, words", [
    ({"n_input": 8}, "task.options.n_input", "did you mean 'n_inputs'"),
    ({"n_inputs": "8"}, "task.options.n_inputs", "whole number"),
    ({"n_inputs": 0}, "task.options.n_inputs", "out of range"),
    ({"n_inputs": 4, "k_active": 6}, "task.options.k_active", "more than n_inputs"),
])
def test_bad_parity_options(options, path, words):
    problems = check_options("parity", options)
    assert [p.path for p in problems] == [path]
    assert words in problems[0].message + problems[0].fix
    with pytest.raises(SpecError):
        dataset_info("parity", options)


def test_options_for_dataset_without_options():
    problems = check_options("mnist", {"size": 3})
    assert problems[0].path == "task.options.size" and "takes no options" in problems[0].fix


def test_catalog_imports_no_torch():
    code = "import sys, workbench.catalog, workbench.registry, workbench.spec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_checkerboard_defaults_to_hannets_12x12_board_and_offers_its_split():
    # the shipped checkerboard_experiments/dataset is utl.problem(t=6): 12 squares per side
    spec = DATASET_OPTIONS["checkerboard"]
    assert spec["squares"].default == 12 and "12" in spec["squares"].help and "8" not in spec["squares"].help
    assert spec["split"].choices == ("random", "hannet") and spec["split"].default == "random"
    assert check_options("checkerboard", {"split": "hannet"}) == []
    (problem,) = check_options("checkerboard", {"split": "hannet", "n_samples": 1000})
    assert problem.path == "task.options.split" and "6561" in problem.fix
    assert check_options("checkerboard", {"split": "shipped"})[0].path == "task.options.split"
    assert DATASET_OPTIONS["parity"]["fresh_batches"].default is False
