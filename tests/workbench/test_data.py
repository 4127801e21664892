"""workbench.data: embedded sets, IDX reading, splits, device-side batches and augmentation."""
from __future__ import annotations

import gzip
import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.data import (
    DataError,
    DatasetMissing,
    augment_batch,
    check_available,
    default_data_root,
    load_dataset,
    make_checkerboard,
    make_parity,
    read_idx,
)


def test_digits_are_1x8x8_images_in_unit_range_with_a_seeded_split():
    d = load_dataset({"dataset": "digits", "val_split": 0.2, "normalize": False}, "cpu", seed=3)
    assert d.input_shape == (1, 8, 8) and d.output_dim == 10 and d.task == "classification"
    assert d.train_size + d.val_size == 1797 and d.val_size == round(1797 * 0.2)
    assert float(d.train_x.min()) >= 0.0 and float(d.train_x.max()) <= 1.0
    again = load_dataset({"dataset": "digits", "val_split": 0.2, "normalize": False}, "cpu", seed=3)
    assert torch.equal(d.train_x, again.train_x) and torch.equal(d.val_y, again.val_y)
    other = load_dataset({"dataset": "digits", "val_split": 0.2, "normalize": False}, "cpu", seed=4)
    assert not torch.equal(d.train_y, other.train_y)


def test_digits_normalised_has_zero_mean_unit_std_on_train():
    d = load_dataset({"dataset": "digits", "val_split": 0.1}, "cpu")
    assert abs(float(d.train_x.mean())) < 1e-4 and abs(float(d.train_x.std()) - 1.0) < 1e-2


def test_parity_label_is_xor_of_first_k_bits():
    x, y = make_parity(8, 3, 500, np.random.default_rng(0))
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert np.array_equal(y, x[:, :3].sum(1).astype(int) % 2)
    d = load_dataset({"dataset": "parity", "val_split": 0.25, "options": {"n_inputs": 6, "k_active": 2,
                                                                          "n_samples": 1000}}, "cpu")
    assert d.input_shape == (6,) and d.train_size == 750 and d.val_size == 250
    assert torch.equal(d.val_y, (d.val_x[:, :2].sum(1).long() % 2))
    with pytest.raises(DataError):
        make_parity(3, 4, 10, np.random.default_rng(0))


def test_checkerboard_is_hannets_grid_and_split():
    t = 4  # HanNet utl.problem(t=4): an 8×8 board of 9×9-point squares inside a 4-point border
    board = np.kron([[0, 1] * t, [1, 0] * t] * t, np.ones((36 // t, 36 // t)))
    expected = np.zeros((81, 81))
    expected[4:76, 4:76] = board
    x, y = make_checkerboard(8, 6561, np.random.default_rng(0))
    assert np.array_equal(y.reshape(81, 81), expected)
    assert np.allclose(x[:81, 1], np.linspace(-1, 1, 81)) and np.allclose(x[::81, 0], np.linspace(-1, 1, 81))
    d = load_dataset({"dataset": "checkerboard", "val_split": 0.75, "options": {"squares": 8}}, "cpu")
    assert (d.train_size, d.val_size) == (1640, 4921)


def test_spirals_have_one_class_per_arm():
    d = load_dataset({"dataset": "spirals", "val_split": 0.0, "options": {"n_arms": 3, "n_samples": 300}}, "cpu")
    assert d.output_dim == 3 and d.val_x is None
    assert sorted(torch.unique(d.train_y).tolist()) == [0, 1, 2]


def test_diabetes_is_z_scored_regression_with_target_scale():
    d = load_dataset({"dataset": "diabetes", "val_split": 0.2}, "cpu")
    assert d.task == "regression" and d.train_y.shape[1] == 1 and d.train_y.dtype == torch.float32
    assert torch.allclose(d.train_x.mean(0), torch.zeros(10), atol=1e-5)
    assert abs(float(d.train_y.mean())) < 1e-5 and abs(float(d.train_y.std(unbiased=False)) - 1) < 1e-4
    assert 50 < d.target_scale < 100  # the target's std in disease-progression units


def test_mnist_from_shared_idx_folder(mnist_root):
    d = load_dataset({"dataset": "mnist", "val_split": 0.0, "normalize": False, "limit_train": 2000}, "cpu",
                     data_root=mnist_root)
    assert d.input_shape == (1, 28, 28) and d.train_size == 2000 and d.val_size == 10_000
    assert float(d.train_x.max()) <= 1.0 and d.train_y.dtype == torch.long
    assert sorted(torch.unique(d.val_y).tolist()) == list(range(10))


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_plain_or_gz_in_torchvision_layout(tmp_path, compress, fake_mnist):
    fake_mnist(tmp_path / "FashionMNIST" / "raw", compress)
    d = load_dataset({"dataset": "fashion-mnist", "normalize": False}, "cpu", data_root=tmp_path)
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
        load_dataset({"dataset": "mnist"}, "cpu", data_root=tmp_path)
    text = str(info.value)
    assert str(tmp_path) in text and str(tmp_path / "MNIST" / "raw") in text and "--download" in text
    with pytest.raises(DatasetMissing):
        check_available({"dataset": "cifar10"}, tmp_path)
    check_available({"dataset": "digits"}, tmp_path)  # embedded: never missing


def test_default_data_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AFWB_DATA", str(tmp_path / "d"))
    assert default_data_root() == tmp_path / "d"


def test_epoch_batches_cover_the_training_set_once_on_device():
    d = load_dataset({"dataset": "spirals", "val_split": 0.0, "options": {"n_samples": 1001}}, "cpu")
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


def test_cifar_style_augmented_batches_are_normalised_after_augmentation(tmp_path, fake_mnist):
    fake_mnist(tmp_path / "MNIST" / "raw", compress=True)
    d = load_dataset({"dataset": "mnist", "augment": ["crop", "hflip"]}, "cpu", data_root=tmp_path)
    assert d.batch_mean is not None  # normalisation moves to the batch, after augmentation
    x, _ = next(d.train_batches(8, torch.Generator().manual_seed(0)))
    assert float(x.min()) < 0  # (0 - 0.1307) / 0.3081


def test_unknown_dataset_and_augmentation_are_errors():
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset({"dataset": "imagenet"}, "cpu")
    with pytest.raises(DataError, match="image"):
        load_dataset({"dataset": "parity", "augment": ["crop"]}, "cpu")


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
