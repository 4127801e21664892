"""Built-in presets: each loads, validates, infers shapes, builds and trains one step on CPU."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.presets import DEFAULT_PRESET, PRESETS_DIR, builtin_keys, builtin_presets, load_builtin, resolve_preset
from workbench.spec import SpecError, build_model, dumps_preset, infer_shapes, load_preset, save_preset, validate

KEYS = builtin_keys()
REQUIRED = {"z-digits", "z-mnist", "pinet-mnist", "pinet-cifar10", "pinet18-cifar10", "twist-resnet-cifar10",
            "twist-resnet18-cifar10", "hannet-checkerboard", "fcnet-checkerboard", "hannet-diabetes",
            "infinite-parity", "infinite-mnist", "mlp-relu-digits", "cnn-relu-mnist"}


def test_required_presets_exist():
    assert REQUIRED <= set(KEYS)
    assert DEFAULT_PRESET == "z-digits" and DEFAULT_PRESET in KEYS
    infos = builtin_presets()
    assert infos[0].key == DEFAULT_PRESET
    assert {i.key for i in infos} == set(KEYS)
    assert all(i.path.parent == PRESETS_DIR and i.name and i.description for i in infos)


@pytest.mark.parametrize("key", KEYS)
def test_preset_builds_and_trains_one_step(key):
    p = load_builtin(key)
    assert p.name and p.description and p.reference
    assert validate(p) == []
    report = infer_shapes(p)
    assert report.ok and report.output_shape is not None
    torch.manual_seed(0)
    model = build_model(p)
    assert report.total_params == sum(q.numel() for q in model.parameters())
    assert report.trainable_params == sum(q.numel() for q in model.parameters() if q.requires_grad)
    assert [name for name, _ in model.named_children()] == [row.name for row in report.layers]
    x = torch.randn(2, *report.input_shape)
    y = model(x)
    assert y.shape == (2, *report.output_shape) and torch.isfinite(y).all()
    y.square().mean().backward()
    trained = [q for q in model.parameters() if q.requires_grad]
    assert trained and any(q.grad is not None and q.grad.abs().sum() > 0 for q in trained)
    assert all(q.grad is None for q in model.parameters() if not q.requires_grad)


@pytest.mark.parametrize("key", KEYS)
def test_round_trip_is_byte_identical(key, tmp_path):
    original = (PRESETS_DIR / f"{key}.json").read_bytes()
    p = load_preset(PRESETS_DIR / f"{key}.json")
    assert dumps_preset(p).encode("utf-8") == original
    save_preset(p, tmp_path / "copy.json")
    assert (tmp_path / "copy.json").read_bytes() == original
    assert load_preset(tmp_path / "copy.json") == p


def test_z_mnist_inner_weight_count():
    model = build_model(load_builtin("z-mnist"))
    inner = sum(m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
                for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert inner == 73_512
    assert sum(q.numel() for q in model.parameters()) == 73_792


def test_recipes_follow_the_papers():
    twist = load_builtin("twist-resnet-cifar10")
    blocks = [layer for layer in twist.model.layers if layer.type == "TwistBasicBlock"]
    assert len(blocks) == 16 and [b.params.get("twist", True) for b in blocks].count(False) == 3
    assert (twist.train.optimizer, twist.train.scheduler, twist.train.peak_epoch, twist.task.batch_size) == \
        ("sgd", "exp_curve", 5.0, 128)
    parity = load_builtin("infinite-parity")
    assert [layer.trainable for layer in parity.model.layers] == [False, True, True, False]
    han = load_builtin("hannet-checkerboard")
    assert han.task.loss == "mse" and han.task.batch_size == 100
    z = load_builtin("z-mnist")
    assert (z.train.optimizer, z.train.lr, z.task.batch_size, z.task.normalize) == ("adamw", 1e-3, 256, False)


def test_resolve_preset(tmp_path):
    assert resolve_preset("z-digits").name == load_builtin("z-digits").name
    path = tmp_path / "mine.json"
    save_preset(load_builtin("z-digits"), path)
    assert resolve_preset(path) == load_builtin("z-digits")
    with pytest.raises(SpecError) as err:
        resolve_preset("z-digit")
    assert "'z-digits'" in str(err.value)
    with pytest.raises(SpecError):
        load_builtin("nope")
