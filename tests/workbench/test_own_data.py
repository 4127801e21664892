"""Your own data: csv, npz and image-folder data sets, on files the tests write."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.data import DataError, load_dataset
from workbench.datasets import dataset_info, describe
from workbench.datasets.csv_file import _read_table
from workbench.sections import TaskSpec
from workbench.spec import load_preset, preset_from_dict, validate


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def flowers(path: Path, rows: int = 60, sep: str = ",", header: bool = True) -> Path:
    """A small table: two measurements and a species that depends on the first one."""
    rng = np.random.default_rng(0)
    lines = [sep.join(["length", "width", "species"])] if header else []
    for i in range(rows):
        species = ("setosa", "versicolor", "virginica")[i % 3]
        length = 1.0 + 2.0 * (i % 3) + rng.normal(0, 0.1)
        lines.append(sep.join([f"{length:.3f}", f"{rng.uniform(0, 1):.3f}", species]))
    return write(path, "\n".join(lines) + "\n")


def csv_task(path: Path, **options) -> TaskSpec:
    return TaskSpec(dataset="csv", val_split=0.25, options={"path": str(path), **options})


# ------------------------------------------------------------------------------------------------ csv
def test_csv_with_a_text_target_is_a_classification_with_its_class_names(tmp_path):
    path = flowers(tmp_path / "flowers.csv")
    info = dataset_info("csv", {"path": str(path), "target": "species"})
    assert (info.task, info.input_shape, info.output_dim) == ("classification", (2,), 3)
    assert info.class_names == ("setosa", "versicolor", "virginica")
    d = load_dataset(csv_task(path, target="species"), "cpu", seed=1)
    assert (d.train_size, d.val_size, d.output_dim, d.class_names) == (45, 15, 3, info.class_names)
    assert d.train_y.dtype == torch.long and set(d.train_y.tolist()) <= {0, 1, 2}


def test_two_feature_columns_make_a_2d_task(tmp_path):
    # the decision-boundary view of 2-D tasks (checkerboard, spirals) needs input shape (2,)
    path = write(tmp_path / "xy.csv", "x1,x2,label\n" + "".join(f"{i / 10},{(i * 7) % 10 / 10},{i % 2}\n"
                                                                 for i in range(40)))
    info = dataset_info("csv", {"path": str(path)})  # target: the last column by default
    assert (info.task, info.input_shape, info.class_names) == ("classification", (2,), ("0", "1"))


def test_csv_standardisation_is_fitted_on_the_training_split_only(tmp_path):
    path = flowers(tmp_path / "flowers.csv")
    d = load_dataset(csv_task(path), "cpu", seed=3)
    assert torch.allclose(d.train_x.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(d.train_x.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1))
    # the same rows, unstandardised: the statistics are the training rows' (not all rows')
    plain = load_dataset(TaskSpec(dataset="csv", val_split=0.25, normalize=False, options={"path": str(path)}),
                         "cpu", seed=3)
    train, val = plain.train_x.double().numpy(), plain.val_x.double().numpy()
    mean, std = train.mean(0), train.std(0)
    assert np.allclose(d.val_x.double().numpy(), (val - mean) / std, atol=1e-5)
    assert not np.allclose(mean, raw.mean(0))


def test_csv_without_header_and_with_semicolons(tmp_path):
    path = flowers(tmp_path / "plain.csv", sep=";", header=False)
    info = dataset_info("csv", {"path": str(path), "target": "col3"})
    assert info.class_names == ("setosa", "versicolor", "virginica") and info.input_shape == (2,)
    problem = validate_task(tmp_path, {"path": str(path), "target": "species"})
    assert problem.path == "task.options.target" and "col1, col2" in problem.message + problem.fix


def test_csv_task_auto_reads_few_whole_numbers_as_classes_and_the_rest_as_regression(tmp_path):
    rows = [f"{i},{i * 0.5},{i % 4}" for i in range(50)]
    classes = write(tmp_path / "c.csv", "a,b,grade\n" + "\n".join(rows) + "\n")
    assert dataset_info("csv", {"path": str(classes)}).class_names == ("0", "1", "2", "3")
    reg = write(tmp_path / "r.csv", "a,b,price\n" + "\n".join(f"{i},{i % 7},{3.5 * i + 1}" for i in range(50)))
    info = dataset_info("csv", {"path": str(reg)})
    assert (info.task, info.output_dim, info.class_names) == ("regression", 1, ("price",))
    d = load_dataset(TaskSpec(dataset="csv", val_split=0.2, options={"path": str(reg)}), "cpu")
    assert d.task == "regression" and d.train_y.shape == (40, 1)
    assert abs(float(d.train_y.mean())) < 1e-5 and d.target_scale > 10  # standardised; scale in price units
    forced = dataset_info("csv", {"path": str(classes), "task": "regression"})
    assert forced.task == "regression"


def validate_task(tmp_path: Path, options: dict, dataset: str = "csv"):
    p = preset_from_dict({"name": "own", "task": {"dataset": dataset, "options": options},
                          "model": {"layers": [{"type": "Flatten"},
                                               {"type": "Linear", "params": {"out_features": "classes"}}]}})
    problems = validate(p, resources=False)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize("text, options, path, words", [
    (None, {}, "task.options.path", ["not found", "missing.csv"]),
    ("a,b,c\n1,2,x\n3,4,y\n", {"target": "cc"}, "task.options.target", ["no column 'cc'", "did you mean 'c'"]),
    ("a,b,c\n1,2,x\n3,oops,y\n5,6,x\n", {}, "task.options.features", ["line 3", "column 'b'", "'oops'"]),
    ("a,b,c\n1,2,x\n3,,y\n5,6,x\n", {}, "task.options.features", ["line 3", "column 'b'", "empty"]),
    ("a,b,c\n1,2,x\n3,4,x\n", {}, "task.options.target", ["one value 'x'", "nothing to classify"]),
    ("a,b,c\n1,2,x\n3,4\n", {}, "task.options.path", ["line 3 has 2 cells"]),
    ("a,b,c\n1,2,x\n", {"features": ["a", "z"]}, "task.options.features", ["no column 'z'"]),
    ("a,b,c\n1,2,3.5\n2,3,x\n", {"task": "regression"}, "task.options.task", ["line 3", "'x'"]),
    ("", {}, "task.options.path", ["is empty"]),
])
def test_bad_csv_is_a_clear_problem_naming_file_row_and_column(tmp_path, text, options, path, words):
    file = tmp_path / "data.csv" if text is not None else tmp_path / "missing.csv"
    if text is not None:
        write(file, text)
    problem = validate_task(tmp_path, {"path": str(file), **options})
    assert problem.path == path
    said = problem.message + " " + problem.fix
    assert str(file) in said
    for word in words:
        assert word in said, (word, said)
    with pytest.raises(DataError):  # the loader refuses it the same way, without a traceback
        load_dataset(TaskSpec(dataset="csv", options={"path": str(file), **options}), "cpu")


def test_no_csv_chosen_points_to_import(tmp_path):
    problem = validate_task(tmp_path, {})
    assert problem.path == "task.options.path" and "Import" in problem.fix


def test_the_csv_is_read_once_per_change(tmp_path):
    path = flowers(tmp_path / "flowers.csv")
    _read_table.cache_clear()
    for _ in range(5):  # the editor asks on every keystroke
        describe("csv", {"path": str(path)})
    assert _read_table.cache_info().misses == 1
    flowers(path, rows=30)  # the file changes: it is read again
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert describe("csv", {"path": str(path)}) is not None
    assert _read_table.cache_info().misses == 2


def test_a_fixed_file_loads_after_a_failed_load(tmp_path):
    path = write(tmp_path / "d.csv", "a,b,c\n1,2,x\n3,oops,y\n")
    with pytest.raises(DataError):
        load_dataset(TaskSpec(dataset="csv", val_split=0.0, options={"path": str(path)}), "cpu")
    write(path, "a,b,c\n1,2,x\n3,4,y\n5,6,y\n")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    d = load_dataset(TaskSpec(dataset="csv", val_split=0.0, options={"path": str(path)}), "cpu")
    assert d.train_size == 3


# ------------------------------------------------------------------------------------------------ npz
def test_npz_classification_regression_and_images(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tab.npz", x=rng.normal(size=(40, 5)), y=np.arange(40) % 4 + 7)
    info = dataset_info("npz", {"path": str(tmp_path / "tab.npz")})
    assert (info.task, info.input_shape, info.class_names) == ("classification", (5,), ("7", "8", "9", "10"))
    d = load_dataset(TaskSpec(dataset="npz", val_split=0.25, options={"path": str(tmp_path / "tab.npz")}), "cpu")
    assert sorted(set(d.train_y.tolist()) | set(d.val_y.tolist())) == [0, 1, 2, 3]

    np.savez(tmp_path / "named.npz", x=rng.normal(size=(10, 3)), y=np.arange(10) % 2,
             class_names=np.array(["no", "yes"]))
    assert dataset_info("npz", {"path": str(tmp_path / "named.npz")}).class_names == ("no", "yes")

    np.savez(tmp_path / "reg.npz", x=rng.normal(size=(30, 2)), y=rng.normal(size=(30, 2)))
    info = dataset_info("npz", {"path": str(tmp_path / "reg.npz")})
    assert (info.task, info.output_dim) == ("regression", 2)

    np.savez(tmp_path / "img.npz", x=rng.integers(0, 256, (12, 9, 9), dtype=np.uint8), y=np.arange(12) % 3)
    info = dataset_info("npz", {"path": str(tmp_path / "img.npz")})
    assert info.input_shape == (1, 9, 9)
    d = load_dataset(TaskSpec(dataset="npz", val_split=0.0, normalize=False, augment=["hflip"],
                              options={"path": str(tmp_path / "img.npz")}), "cpu")
    assert d.train_x.shape == (12, 1, 9, 9) and float(d.train_x.max()) <= 1.0


@pytest.mark.parametrize("arrays, words", [
    ({"x": np.zeros((5, 2)), "y": np.arange(4)}, ["x has 5 samples but y has 4", "mismatched lengths"]),
    ({"inputs": np.zeros((5, 2)), "y": np.arange(5)}, ["no array 'x'", "inputs"]),
    ({"x": np.zeros((5, 2)), "y": np.zeros(5, dtype=np.int64)}, ["one class", "nothing to classify"]),
    ({"x": np.array(["a"] * 4), "y": np.arange(4)}, ["not numbers"]),
])
def test_bad_npz_is_a_clear_problem(tmp_path, arrays, words):
    np.savez(tmp_path / "bad.npz", **arrays)
    problem = validate_task(tmp_path, {"path": str(tmp_path / "bad.npz")}, dataset="npz")
    said = problem.message + " " + problem.fix
    assert problem.path == "task.options.path" and str(tmp_path / "bad.npz") in said
    for word in words:
        assert word in said, (word, said)


def test_npz_that_is_not_an_npz(tmp_path):
    write(tmp_path / "x.npz", "hello")
    problem = validate_task(tmp_path, {"path": str(tmp_path / "x.npz")}, dataset="npz")
    assert "cannot read" in problem.message and "numpy.savez" in problem.fix


# --------------------------------------------------------------------------------------- image folder
def image_folder(root: Path, per_class: int = 4) -> Path:
    from PIL import Image

    for name, colour in (("cat", (250, 10, 10)), ("dog", (10, 10, 250))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (20 + i, 16), colour).save(root / name / f"{i}.png")
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_decodes_every_image_once_with_progress(tmp_path):
    root = image_folder(tmp_path / "pets")
    info = dataset_info("image-folder", {"path": str(root), "size": 8})
    assert (info.input_shape, info.class_names) == ((3, 8, 8), ("cat", "dog"))
    seen: list[tuple[str, int, int]] = []
    d = load_dataset(TaskSpec(dataset="image-folder", val_split=0.25, normalize=False,
                              options={"path": str(root), "size": 8}), "cpu",
                     progress=lambda what, done, total: seen.append((what, done, total)))
    assert d.train_size + d.val_size == 8 and d.input_shape == (3, 8, 8)
    assert seen[0] == ("decoding images", 0, 8) and seen[-1] == ("decoding images", 8, 8)
    red = d.train_x[d.train_y == 0]
    assert torch.allclose(red[:, 0], torch.full_like(red[:, 0], 250 / 255), atol=1e-6)
    grey = dataset_info("image-folder", {"path": str(root), "size": 8, "grayscale": True})
    assert grey.input_shape == (1, 8, 8)
    normalised = load_dataset(TaskSpec(dataset="image-folder", val_split=0.0, options={"path": str(root), "size": 8}),
                              "cpu")
    assert torch.allclose(normalised.train_x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_image_folder_problems_name_the_folder_or_image(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    problem = validate_task(tmp_path, {"path": str(empty)}, dataset="image-folder")
    assert "holds no class folders" in problem.message and "cat" in problem.fix
    one = tmp_path / "one"
    (one / "cat").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (4, 4)).save(one / "cat" / "a.png")
    assert "nothing to classify" in validate_task(tmp_path, {"path": str(one)}, dataset="image-folder").message
    root = image_folder(tmp_path / "pets")
    bad = root / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError) as err:
        load_dataset(TaskSpec(dataset="image-folder", options={"path": str(root), "size": 8}), "cpu")
    assert str(bad) in str(err.value)
    (root / "cat" / "0.png").unlink()
    for f in (root / "cat").iterdir():
        f.unlink()
    assert "holds no images" in validate_task(tmp_path, {"path": str(root)}, dataset="image-folder").message


@pytest.mark.parametrize("dataset, name, words", [
    ("csv", "missing.csv", ["CSV file not found"]),
    ("npz", "missing.npz", [".npz file not found"]),
    ("image-folder", "missing", ["image folder not found"]),
    ("csv", ".", ["is not a file"]),
    ("npz", ".", ["is not a file"]),
])
def test_a_missing_or_wrong_path_names_it_and_points_to_import(tmp_path, dataset, name, words):
    path = tmp_path / name if name != "." else tmp_path
    problem = validate_task(tmp_path, {"path": str(path)}, dataset=dataset)
    said = problem.message + " " + problem.fix
    assert problem.path == "task.options.path" and str(path) in said
    for word in words:
        assert word in said, (word, said)
    if "not found" in said:
        assert "Import…" in problem.fix
    with pytest.raises(DataError) as err:  # the loader says the same
        load_dataset(TaskSpec(dataset=dataset, options={"path": str(path)}), "cpu")
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------------------------- a run
def test_a_csv_preset_trains_and_its_relative_path_is_read_from_the_preset_folder(tmp_path, one_torch_thread):
    from workbench.trainer import Trainer

    folder = tmp_path / "shared"
    flowers(folder / "flowers.csv", rows=90)
    write(folder / "flowers.json", """{"name": "flowers", "task": {"dataset": "csv", "batch_size": 16,
      "val_split": 0.2, "options": {"path": "flowers.csv", "target": "species"}},
      "model": {"layers": [{"type": "Linear", "params": {"out_features": 16}}, {"type": "ReLU"},
                           {"type": "Linear", "params": {"out_features": "classes"}}]},
      "train": {"lr": 0.02, "epochs": 20, "device": "cpu"}}""")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = os.getcwd()
    os.chdir(elsewhere)  # the relative path must not depend on the working directory
    try:
        preset = load_preset(folder / "flowers.json")
        assert validate(preset) == []
        summary = Trainer(preset).run(lambda e: None)
    finally:
        os.chdir(cwd)
    assert summary.status == "finished" and summary.best_val_accuracy >= 0.9


# ------------------------------------------------------------------------ paths relative to the preset
def test_saving_keeps_a_path_relative_when_the_data_lies_beside_the_preset(tmp_path):
    from workbench.spec import dumps_preset, save_preset

    folder = tmp_path / "project"
    flowers(folder / "data" / "flowers.csv")
    write(folder / "p.json", '{"name": "p", "task": {"dataset": "csv", "options": {"path": "data/flowers.csv"}}}')
    preset = load_preset(folder / "p.json")
    assert preset.task.base_dir == folder.resolve()
    save_preset(preset, folder / "copy.json")  # the same folder: unchanged
    assert load_preset(folder / "copy.json").task.options["path"] == "data/flowers.csv"
    save_preset(preset, tmp_path / "up.json")  # the folder above: still inside, relative to it
    assert load_preset(tmp_path / "up.json").task.options["path"] == "project/data/flowers.csv"
    save_preset(preset, tmp_path / "other" / "far.json")  # elsewhere: absolute, so it still finds the file
    far = load_preset(tmp_path / "other" / "far.json")
    assert far.task.options["path"] == str((folder / "data" / "flowers.csv").resolve())
    for path in (folder / "copy.json", tmp_path / "up.json", tmp_path / "other" / "far.json"):
        assert dataset_info("csv", load_preset(path).task.options, load_preset(path).task.base_dir).input_shape == (2,)
    assert preset.task.options["path"] == "data/flowers.csv"  # saving does not change the preset in memory
    assert '"path": "data/flowers.csv"' in dumps_preset(preset)  # text without a folder: as it is


def test_a_run_folder_finds_the_data_for_eval_and_resume(tmp_path, capsys, one_torch_thread):
    from workbench import cli

    folder = tmp_path / "shared"
    flowers(folder / "flowers.csv", rows=60)
    write(folder / "flowers.json", """{"name": "flowers", "task": {"dataset": "csv", "batch_size": 16,
      "val_split": 0.2, "options": {"path": "flowers.csv"}},
      "model": {"layers": [{"type": "Linear", "params": {"out_features": "classes"}}]},
      "train": {"lr": 0.05, "epochs": 1, "device": "cpu"}}""")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = os.getcwd()
    os.chdir(elsewhere)
    try:
        assert cli.main(["train", str(folder / "flowers.json"), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
        run = Path(capsys.readouterr().out.splitlines()[0].split("run folder: ", 1)[1])
        written = load_preset(run / "preset.json")
        assert written.task.options["path"] == str((folder / "flowers.csv").resolve())
        assert cli.main(["eval", str(run)]) == 0
        assert "accuracy" in capsys.readouterr().out
        assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0
    finally:
        os.chdir(cwd)


def test_the_readme_example_trains(one_torch_thread):
    from workbench.trainer import Trainer

    repo = Path(__file__).resolve().parents[2]
    preset = load_preset(repo / "examples" / "iris.json")
    assert validate(preset) == []
    info = dataset_info("csv", preset.task.options, preset.task.base_dir)
    assert (info.input_shape, info.class_names) == ((4,), ("setosa", "versicolor", "virginica"))
    summary = Trainer(preset).run(lambda e: None)
    assert summary.status == "finished" and summary.best_val_accuracy >= 0.85  # README: 93.33% best, 90% final
