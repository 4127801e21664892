"""Downloading MNIST-format and CIFAR-10 sets the way torchvision does, with progress and cancel.

Only the network fetch is replaced (``urllib.request.urlopen``): a fake server hands out files the
test makes, and torchvision's table of the files (their MD5 sums) is set to describe them."""
from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request

import numpy as np
import pytest
import torchvision

from tests.conftest import mnist_gz_files
from workbench import cli
from workbench.data import DataError, LoadCancelled, check_available, download_dataset, load_dataset
from workbench.sections import TaskSpec

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, length: bool = True) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))} if length else {}


@pytest.fixture
def server(monkeypatch):
    """``serve(name, files)``: torchvision's resource table of ``name`` describes ``files``
    ({file name: bytes}) at a fake mirror; returns the list of URLs requested."""
    requested: list[str] = []
    content: dict[str, bytes] = {}

    def urlopen(request, timeout=None):
        url = request.full_url if hasattr(request, "full_url") else str(request)
        requested.append(url)
        name = url.rsplit("/", 1)[-1]
        if "down.example" in url or name not in content:
            raise urllib.error.URLError("connection refused")
        return FakeResponse(content[name])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)

    def serve(cls_name: str, files: dict[str, bytes], mirrors=("https://mirror.example/",)):
        content.update(files)
        cls = getattr(torchvision.datasets, cls_name)
        monkeypatch.setattr(cls, "mirrors", list(mirrors))
        monkeypatch.setattr(cls, "resources", [(n, hashlib.md5(b).hexdigest()) for n, b in files.items()])
        return requested

    return serve


def test_download_into_torchvisions_layout_with_progress(tmp_path, server):
    requested = server("FashionMNIST", mnist_gz_files(), mirrors=("https://down.example/", "https://mirror.example/"))
    with pytest.raises(Exception):
        check_available(TaskSpec(dataset="fashion-mnist"), tmp_path)
    seen: list[tuple[str, int, int]] = []
    folder = download_dataset("fashion-mnist", tmp_path, lambda what, done, total: seen.append((what, done, total)))
    assert folder == tmp_path / "FashionMNIST" / "raw"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f + ".gz" for f in FILES)  # no temp files left
    assert any(u.startswith("https://down.example/") for u in requested)  # a dead mirror, then the next one
    last = {what: (done, total) for what, done, total in seen}
    assert set(last) == {f"downloading {f}.gz" for f in FILES}
    assert all(done == total > 0 for done, total in last.values())
    check_available(TaskSpec(dataset="fashion-mnist"), tmp_path)
    d = load_dataset(TaskSpec(dataset="fashion-mnist", normalize=False), "cpu", data_root=tmp_path)
    assert (d.train_size, d.val_size) == (20, 6) and d.class_names[0] == "T-shirt/top"
    before = len(requested)
    download_dataset("fashion-mnist", tmp_path)  # already there (MD5s match): nothing fetched
    assert len(requested) == before


def test_cancel_leaves_nothing_half_written(tmp_path, server):
    server("MNIST", mnist_gz_files())

    def progress(what: str, done: int, total: int) -> None:
        if what.startswith("downloading train-labels") or done > 100:
            raise LoadCancelled(what)

    with pytest.raises(LoadCancelled):
        download_dataset("mnist", tmp_path, progress)
    raw = tmp_path / "MNIST" / "raw"
    assert [p.name for p in raw.iterdir()] == []  # the file in flight was a temp file, now removed


def test_a_damaged_download_is_refused(tmp_path, server):
    files = mnist_gz_files()
    server("MNIST", files)
    files_served = dict(files)
    files_served["train-images-idx3-ubyte.gz"] = b"garbage"
    server("MNIST", files_served)  # the server now hands out other bytes than torchvision expects
    torchvision.datasets.MNIST.resources[0] = ("train-images-idx3-ubyte.gz",
                                               hashlib.md5(files["train-images-idx3-ubyte.gz"]).hexdigest())
    with pytest.raises(DataError, match="damaged"):
        download_dataset("mnist", tmp_path)
    assert not (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()


def test_no_network_is_a_clear_error(tmp_path, server):
    server("MNIST", {}, mirrors=("https://down.example/",))
    torchvision.datasets.MNIST.resources = [("train-images-idx3-ubyte.gz", "0" * 32)]
    with pytest.raises(DataError) as err:
        download_dataset("mnist", tmp_path)
    assert "https://down.example/train-images-idx3-ubyte.gz" in str(err.value) and "network" in err.value.hint


def test_cifar10_archive_is_fetched_and_extracted(tmp_path, monkeypatch):
    import pickle
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                     "batches.meta"]:
            if name == "batches.meta":
                blob = pickle.dumps({"label_names": ["airplane"]})
            else:
                blob = pickle.dumps({"data": np.zeros((2, 3072), dtype=np.uint8), "labels": [0, 1]})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    archive = buffer.getvalue()

    def urlopen(request, timeout=None):
        assert request.full_url == torchvision.datasets.CIFAR10.url
        return FakeResponse(archive, length=False)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "tgz_md5", hashlib.md5(archive).hexdigest())
    # torchvision checks every batch file's MD5 when it reads them; None: the test's files have no known sum
    for attr in ("train_list", "test_list"):
        monkeypatch.setattr(torchvision.datasets.CIFAR10, attr,
                            [[n, None] for n, _ in getattr(torchvision.datasets.CIFAR10, attr)])
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                                                "md5": None})
    seen = []
    folder = download_dataset("cifar10", tmp_path, lambda what, done, total: seen.append((done, total)))
    assert folder == tmp_path and (tmp_path / "cifar-10-batches-py" / "data_batch_1").is_file()
    assert seen[-1] == (len(archive), 0)  # no Content-Length: the total is unknown (0)
    d = load_dataset(TaskSpec(dataset="cifar10", normalize=False), "cpu", data_root=tmp_path)
    assert (d.train_size, d.val_size, d.input_shape) == (10, 2, (3, 32, 32))


def test_cli_download_and_train_download(tmp_path, server, capsys):
    server("MNIST", mnist_gz_files())
    assert cli.main(["download", "mnist", "--data-root", str(tmp_path / "a"), "--quiet"]) == 0
    assert str(tmp_path / "a" / "MNIST" / "raw") in capsys.readouterr().out
    assert cli.main(["download", "digits", "--data-root", str(tmp_path / "a")]) == 2
    assert "not downloadable" in capsys.readouterr().err
    code = cli.main(["train", "z-mnist", "--data-root", str(tmp_path / "b"), "--download", "--epochs", "1",
                     "--device", "cpu", "--out", str(tmp_path / "runs"), "--quiet"])
    assert code == 0 and (tmp_path / "b" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").is_file()
