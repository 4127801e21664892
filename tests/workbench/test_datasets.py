"""workbench.datasets: the registry (one entry per data set), descriptions, options and their errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.datasets import DATASET_NAMES, DATASETS, check_options, dataset_info, default_options
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
    assert set(DATASET_NAMES) == set(expected) | {"csv", "image-folder", "npz"}
    for name, (task, shape, out, embedded) in expected.items():
        info = dataset_info(name)
        assert (info.task, info.input_shape, info.output_dim, info.embedded) == (task, shape, out, embedded)
        assert info.name == name and info.description
        assert len(info.class_names) == out and all(isinstance(n, str) and n for n in info.class_names)


def test_every_dataset_has_class_names_worth_an_axis_label():
    assert dataset_info("digits").class_names == tuple("0123456789")
    assert dataset_info("mnist").class_names == tuple("0123456789")
    assert dataset_info("fashion-mnist").class_names[0] == "T-shirt/top"
    assert dataset_info("fashion-mnist").class_names[-1] == "Ankle boot"
    assert dataset_info("cifar10").class_names == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                   "horse", "ship", "truck")
    assert dataset_info("parity").class_names == ("even", "odd")
    assert dataset_info("spirals", {"n_arms": 3}).class_names == ("arm 1", "arm 2", "arm 3")
    assert len(set(dataset_info("checkerboard").class_names)) == 2


def test_every_entry_is_complete():
    for name, entry in DATASETS.items():
        assert entry.name == name and entry.summary and entry.citation, name
        assert entry.kind in ("classification", "regression", "auto")
        assert entry.downloads == (entry.source == "download"), name
        for spec in entry.options:
            assert spec.check(spec.default) is None or spec.kind == "path", (name, spec.name)
            assert spec.help and spec.title, (name, spec.name)


def test_options_change_shapes():
    assert dataset_info("parity", {"n_inputs": 12, "k_active": 5}).input_shape == (12,)
    assert dataset_info("spirals", {"n_arms": 3}).output_dim == 3
    assert default_options("parity")["k_active"] == 3
    assert default_options("mnist") == {}


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


def test_registry_imports_no_torch():
    code = "import sys, workbench.datasets, workbench.registry, workbench.spec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_checkerboard_defaults_to_hannets_12x12_board_and_offers_its_split():
    # the shipped checkerboard_experiments/dataset is utl.problem(t=6): 12 squares per side
    spec = DATASETS["checkerboard"].option_schema
    assert spec["squares"].default == 12 and "12" in spec["squares"].help and "8" not in spec["squares"].help
    assert spec["split"].choices == ("random", "hannet") and spec["split"].default == "random"
    assert check_options("checkerboard", {"split": "hannet"}) == []
    (problem,) = check_options("checkerboard", {"split": "hannet", "n_samples": 1000})
    assert problem.path == "task.options.split" and "6561" in problem.fix
    assert check_options("checkerboard", {"split": "shipped"})[0].path == "task.options.split"
    assert DATASETS["parity"].option_schema["fresh_batches"].default is False
