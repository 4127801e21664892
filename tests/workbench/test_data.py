"""workbench.data: embedded sets, IDX reading, splits, device-side batches and augmentation."""
from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest
import torch

from workbench.sections import TaskSpec
from workbench.data import (
    DataError,
    DatasetMissing,
    augment_batch,
    check_available,
    hannet_split,
    default_data_root,
    load_dataset,
    make_checkerboard,
    make_parity,
    read_idx,
)


def test_digits_are_1x8x8_images_in_unit_range_with_a_seeded_split():
    d = load_dataset(TaskSpec(dataset="digits", val_split=0.2, normalize=False), "cpu", seed=3)
    assert d.input_shape == (1, 8, 8) and d.output_dim == 10 and d.task == "classification"
    assert d.train_size + d.val_size == 1797 and d.val_size == round(1797 * 0.2)
    assert float(d.train_x.min()) >= 0.0 and float(d.train_x.max()) <= 1.0
    again = load_dataset(TaskSpec(dataset="digits", val_split=0.2, normalize=False), "cpu", seed=3)
    assert torch.equal(d.train_x, again.train_x) and torch.equal(d.val_y, again.val_y)
    other = load_dataset(TaskSpec(dataset="digits", val_split=0.2, normalize=False), "cpu", seed=4)
    assert not torch.equal(d.train_y, other.train_y)


def test_digits_normalised_has_zero_mean_unit_std_on_train():
    d = load_dataset(TaskSpec(dataset="digits", val_split=0.1), "cpu")
    assert abs(float(d.train_x.mean())) < 1e-4 and abs(float(d.train_x.std()) - 1.0) < 1e-2


def test_parity_label_is_xor_of_first_k_bits():
    x, y = make_parity(8, 3, 500, np.random.default_rng(0))
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert np.array_equal(y, x[:, :3].sum(1).astype(int) % 2)
    d = load_dataset(TaskSpec(dataset="parity", val_split=0.25, options={"n_inputs": 6, "k_active": 2,
                                                                          "n_samples": 1000}), "cpu")
    assert d.input_shape == (6,) and d.train_size == 750 and d.val_size == 250
    assert torch.equal(d.val_y, (d.val_x[:, :2].sum(1).long() % 2))
    with pytest.raises(DataError):
        make_parity(3, 4, 10, np.random.default_rng(0))


@pytest.mark.parametrize("t", [4, 6])
def test_checkerboard_is_hannets_grid_and_split(t):
    # HanNet utl.problem(t): a 2t×2t board of (36/t)-point squares inside a 4-point border
    board = np.kron([[0, 1] * t, [1, 0] * t] * t, np.ones((36 // t, 36 // t)))
    expected = np.zeros((81, 81))
    expected[4:76, 4:76] = board
    x, y = make_checkerboard(2 * t, 6561, np.random.default_rng(0))
    assert np.array_equal(y.reshape(81, 81), expected)
    assert np.allclose(x[:81, 1], np.linspace(-1, 1, 81)) and np.allclose(x[::81, 0], np.linspace(-1, 1, 81))
    d = load_dataset(TaskSpec(dataset="checkerboard", val_split=0.75, options={"squares": 2 * t}), "cpu")
    assert (d.train_size, d.val_size) == (1640, 4921)


def test_checkerboard_default_is_hannets_shipped_12x12_board():
    # the shipped dataset/{trainset,testset}.txt (github.com/yyy32/HanNet, 09f8dc0) is utl.problem(t=6)
    d = load_dataset(TaskSpec(dataset="checkerboard", val_split=0.75), "cpu")
    x, y = make_checkerboard(12, 6561, np.random.default_rng(0))
    assert int(y.sum()) == 624 + 1968  # class-1 points in the shipped train + test files
    assert torch.equal(torch.sort(torch.cat([d.train_y, d.val_y])).values, torch.sort(torch.from_numpy(y)).values)


def test_checkerboard_hannet_split_is_the_shipped_one():
    train, test = hannet_split()
    assert (len(train), len(test)) == (1640, 4921)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(6561))
    # figures read off the shipped trainset.txt: its first rows lie at grid indices 4940, 3920, 4055,
    # 5055, 1113 with labels 0, 1, 1, 1, 0; the indices sum to 5,330,653; 624 of 1,640 (train) and
    # 1,968 of 4,921 (test) points are class 1
    assert {4940, 3920, 4055, 5055, 1113} <= set(train.tolist()) and int(train.sum()) == 5_330_653
    _, y = make_checkerboard(12, 6561, np.random.default_rng(0))
    assert y[[4940, 3920, 4055, 5055, 1113]].tolist() == [0, 1, 1, 1, 0]
    assert (int(y[train].sum()), int(y[test].sum())) == (624, 1968)
    d = load_dataset(TaskSpec(dataset="checkerboard", val_split=0.1, options={"split": "hannet"}), "cpu", seed=5)
    assert (d.train_size, d.val_size) == (1640, 4921)  # val_split is ignored
    x, _ = make_checkerboard(12, 6561, np.random.default_rng(0))
    assert torch.equal(d.train_x, torch.from_numpy(x[train])) and torch.equal(d.train_y, torch.from_numpy(y[train]))
    with pytest.raises(DataError, match="n_samples"):
        load_dataset(TaskSpec(dataset="checkerboard", options={"split": "hannet", "n_samples": 1000}), "cpu")


def test_spirals_have_one_class_per_arm():
    d = load_dataset(TaskSpec(dataset="spirals", val_split=0.0, options={"n_arms": 3, "n_samples": 300}), "cpu")
    assert d.output_dim == 3 and d.val_x is None
    assert sorted(torch.unique(d.train_y).tolist()) == [0, 1, 2]


def test_diabetes_is_z_scored_regression_with_target_scale():
    d = load_dataset(TaskSpec(dataset="diabetes", val_split=0.2), "cpu")
    assert d.task == "regression" and d.train_y.shape[1] == 1 and d.train_y.dtype == torch.float32
    assert torch.allclose(d.train_x.mean(0), torch.zeros(10), atol=1e-5)
    assert abs(float(d.train_y.mean())) < 1e-5 and abs(float(d.train_y.std(unbiased=False)) - 1) < 1e-4
    assert 50 < d.target_scale < 100  # the target's std in disease-progression units


def test_mnist_from_shared_idx_folder(mnist_root):
    d = load_dataset(TaskSpec(dataset="mnist", val_split=0.0, normalize=False, limit_train=2000), "cpu",
                     data_root=mnist_root)
    assert d.input_shape == (1, 28, 28) and d.train_size == 2000 and d.val_size == 10_000
    assert float(d.train_x.max()) <= 1.0 and d.train_y.dtype == torch.long
    assert sorted(torch.unique(d.val_y).tolist()) == list(range(10))


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_plain_or_gz_in_torchvision_layout(tmp_path, compress, fake_mnist):
    fake_mnist(tmp_path / "FashionMNIST" / "raw", compress)
    d = load_dataset(TaskSpec(dataset="fashion-mnist", normalize=False), "cpu", data_root=tmp_path)
    assert (d.train_size, d.val_size) == (20, 6)
    assert d.train_y.tolist() == list(np.arange(20) % 10)
    name = "train-labels-idx1-ubyte" + (".gz" if compress else "")
    assert read_idx(tmp_path / "FashionMNIST" / "raw" / name).tolist() == list(np.arange(20) % 10)


def test_truncated_idx_is_a_clear_error(tmp_path, fake_mnist):
    fake_mnist(tmp_path / "m", compress=False)
    p = tmp_path / "m" / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        read_idx(p)


def test_missing_dataset_names_folders_and_download_switch(tmp_path):
    with pytest.raises(DatasetMissing) as info:
        load_dataset(TaskSpec(dataset="mnist"), "cpu", data_root=tmp_path)
    text = str(info.value)
    assert str(tmp_path) in text and str(tmp_path / "MNIST" / "raw") in text and "--download" in text
    with pytest.raises(DatasetMissing):
        check_available(TaskSpec(dataset="cifar10"), tmp_path)
    check_available(TaskSpec(dataset="digits"), tmp_path)  # embedded: never missing


def test_default_data_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AFWB_DATA", str(tmp_path / "d"))
    assert default_data_root() == tmp_path / "d"


def test_epoch_batches_cover_the_training_set_once_on_device():
    d = load_dataset(TaskSpec(dataset="spirals", val_split=0.0, options={"n_samples": 1001}), "cpu")
    # 1000 samples (n_samples rounds to whole arms); a trailing batch of 1 would be dropped
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([x for x, _ in d.train_batches(64, g)])
    assert d.steps_per_epoch(64) == math.ceil(d.train_size / 64)
    assert seen.shape[0] == d.train_size
    assert torch.equal(torch.sort(seen[:, 0]).values, torch.sort(d.train_x[:, 0]).values)
    assert d.steps_per_epoch(333) == 3  # 1000 = 3·333 + 1: the single left-over sample is dropped


def test_augmentations_keep_shape_and_range_and_are_seeded():
    x = torch.rand(16, 3, 32, 32)
    for name in ("crop", "hflip", "affine", "jitter"):
        a = augment_batch(x, [name], torch.Generator().manual_seed(1))
        b = augment_batch(x, [name], torch.Generator().manual_seed(1))
        assert a.shape == x.shape and torch.equal(a, b)
        assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0 + 1e-6
    flipped = augment_batch(x, ["hflip"], torch.Generator().manual_seed(1))
    for i in range(16):  # each sample is either itself or its mirror image
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))


def test_crop_is_a_shift_with_zero_padding():
    x = torch.arange(1.0, 1 + 8 * 8).reshape(1, 1, 8, 8).repeat(32, 1, 1, 1)
    out = augment_batch(x, ["crop"], torch.Generator().manual_seed(0))
    for i in range(32):
        nz = out[i, 0][out[i, 0] > 0]
        # the surviving pixels keep their row-major order (a pure translation)
        assert torch.all(nz[1:] > nz[:-1])
    assert not torch.equal(out, x)


def _shift(img: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """img (C, H, W) with its content moved dx pixels right and dy down, zero fill."""
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    out[..., max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
        img[..., max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    return out


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_affine_translate_is_torchvisions_whole_pixel_shift(interpolation):
    # torchvision RandomAffine(translate=(0.3, 0.3)) (the twist notebook 410b9bb): shift ~ round(U(−0.3·W, 0.3·W))
    # pixels; with no rotation and no zoom the output is the input moved by whole pixels
    x = torch.rand(200, 1, 20, 20)
    options = {"affine": {"degrees": 0.0, "translate": 0.3, "scale_min": 1.0, "scale_max": 1.0,
                          "interpolation": interpolation}}
    out = augment_batch(x, ["affine"], torch.Generator().manual_seed(0), options)
    shifts = []
    for i in range(200):
        found = [(dx, dy) for dx in range(-6, 7) for dy in range(-6, 7)
                 if torch.allclose(out[i], _shift(x[i], dx, dy), atol=1e-5)]
        assert len(found) == 1, i
        shifts.append(found[0])
    assert max(abs(dx) for dx, _ in shifts) == 6 and max(abs(dy) for _, dy in shifts) == 6  # 0.3·20 = 6
    assert {dx for dx, _ in shifts} == set(range(-6, 7))


def test_affine_defaults_and_nearest_interpolation():
    x = torch.rand(64, 3, 16, 16)
    near = augment_batch(x, ["affine"], torch.Generator().manual_seed(2), {"affine": {"interpolation": "nearest"}})
    values = set(x.flatten().tolist()) | {0.0}
    assert set(near.flatten().tolist()) <= values  # nearest only copies pixels (or the zero fill)
    # the default (no options) is the same draw with bilinear resampling: same geometry, blended values
    default = augment_batch(x, ["affine"], torch.Generator().manual_seed(2))
    assert not torch.equal(default, near) and (default - near).abs().mean() < 0.2


def test_augment_options_reach_the_batches_and_are_validated():
    from workbench.spec import TaskSpec, validate, Preset, LayerSpec, ModelSpec

    x = torch.rand(8, 1, 8, 8)
    kept = augment_batch(x, ["hflip"], torch.Generator().manual_seed(0), {"hflip": {"p": 0.0}})
    assert torch.equal(kept, x)
    same = augment_batch(x, ["crop"], torch.Generator().manual_seed(0), {"crop": {"padding": 0}})
    assert torch.equal(same, x)

    def problems(augment, options):
        p = Preset(name="x", task=TaskSpec(dataset="digits", augment=augment, augment_options=options),
                   model=ModelSpec([LayerSpec("Flatten"), LayerSpec("Linear", {"out_features": "classes"})]))
        return {q.path: q for q in validate(p)}

    assert problems(["affine"], {"affine": {"translate": 0.3, "interpolation": "nearest"}}) == {}
    found = problems(["affine"], {"affine": {"translat": 0.3}, "afine": {}})
    assert "did you mean 'translate'" in found["task.augment_options.affine.translat"].fix
    assert "did you mean 'affine'" in found["task.augment_options.afine"].fix
    assert "not in task.augment" in problems([], {"crop": {"padding": 2}})["task.augment_options.crop"].message
    assert "task.augment_options.affine.scale_min" in problems(["affine"], {"affine": {"scale_min": 1.5}})
    assert "task.augment_options.affine.degrees" in problems(["affine"], {"affine": {"degrees": -1}})


def test_cifar_style_augmented_batches_are_normalised_after_augmentation(tmp_path, fake_mnist):
    fake_mnist(tmp_path / "MNIST" / "raw", compress=True)
    d = load_dataset(TaskSpec(dataset="mnist", augment=["crop", "hflip"]), "cpu", data_root=tmp_path)
    assert d.batch_mean is not None  # normalisation moves to the batch, after augmentation
    x, _ = next(d.train_batches(8, torch.Generator().manual_seed(0)))
    assert float(x.min()) < 0  # (0 - 0.1307) / 0.3081


def test_unknown_dataset_and_augmentation_are_errors():
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset(TaskSpec(dataset="imagenet"), "cpu")
    with pytest.raises(DataError, match="image"):
        load_dataset(TaskSpec(dataset="parity", augment=["crop"]), "cpu")


def test_truncated_or_corrupt_gz_is_a_data_error(tmp_path, fake_mnist):
    fake_mnist(tmp_path / "m", compress=True)
    p = tmp_path / "m" / "train-images-idx3-ubyte.gz"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])                       # cut mid-stream: gzip's EOFError
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(p)
    p.write_bytes(data[:10] + bytes(len(data) - 10))            # a gzip header, then garbage
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(p)


def _counting_gzip_reads(monkeypatch) -> list[int]:
    got: list[int] = []
    real = gzip.GzipFile.read

    def read(self, size=-1):
        data = real(self, size)
        got.append(len(data))
        return data

    monkeypatch.setattr(gzip.GzipFile, "read", read)
    return got


def test_idx_header_size_is_checked_before_the_data_is_inflated(tmp_path, monkeypatch):
    got = _counting_gzip_reads(monkeypatch)
    huge = tmp_path / "huge-idx3-ubyte.gz"                      # dims whose product overflows int64
    with gzip.open(huge, "wb") as fh:
        fh.write(struct.pack(">BBBB", 0, 0, 0x08, 4) + struct.pack(">4I", *[2**32 - 1] * 4) + bytes(100))
    with pytest.raises(DataError) as info:
        read_idx(huge)
    assert f"{(2**32 - 1) ** 4:,} values" in info.value.message and sum(got) <= 4 + 16
    got.clear()
    bomb = tmp_path / "bomb-idx1-ubyte.gz"                      # says 10 values, inflates to 20 MB
    with gzip.open(bomb, "wb") as fh:
        fh.write(struct.pack(">BBBB", 0, 0, 0x08, 1) + struct.pack(">I", 10) + bytes(20 * 2**20))
    with pytest.raises(DataError, match="more data than its header"):
        read_idx(bomb)
    assert sum(got) <= 4 + 4 + 10 + 1


def test_plain_idx_size_check_does_not_overflow(tmp_path):
    p = tmp_path / "big-idx3-ubyte"
    p.write_bytes(struct.pack(">BBBB", 0, 0, 0x0E, 3) + struct.pack(">3I", *[2**31] * 3) + bytes(64))
    with pytest.raises(DataError) as info:
        read_idx(p)
    assert f"{2**93:,} values" in info.value.message and "holds 64" in info.value.message
