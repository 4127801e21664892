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


# --------------------------------------------------------------------------- fidelity to the originals
@pytest.mark.parametrize(("key", "params"), [
    ("hannet-checkerboard", 3_032),     # the shipped trained model/hannet.pkl holds exactly these tensors
    ("fcnet-checkerboard", 51_002),     # Net([100]*6) of checkerboard_experiments/ann.py
    ("pinet-mnist", 1_220_362),         # the seed blog's PolyNet(in_channels=1)
    ("pinet-cifar10", 1_220_938),       # PolyNet(in_channels=3)
    ("twist-resnet-cifar10", 31_842_811),  # 410b9bb's ResNet34 less its unused/slaved twist kernels
])
def test_parameter_counts_come_out_of_infer_shapes(key, params):
    assert infer_shapes(load_builtin(key)).total_params == params


def test_hannet_checkerboard_is_the_originals_hannet_30x20():
    # checkerboard_experiments/ann.py HouseholderNet([30]*20): Linear at idx 0, 1 and 19, |·| after each,
    # 17 Householder layers, a Linear classifier; --initial orth on every weight and vector
    p = load_builtin("hannet-checkerboard")
    assert [layer.type for layer in p.model.layers] == ["Linear", "Abs", "Linear", "Abs", "HanStack", "Linear",
                                                        "Abs", "Linear"]
    assert p.model.layers[4].params["depth"] == 17
    assert all(layer.params.get("init") == "orthogonal" for layer in p.model.layers if layer.params)
    fc = load_builtin("fcnet-checkerboard")
    linears = [layer for layer in fc.model.layers if layer.type == "Linear"]
    assert len(linears) == 7 and all(layer.params["init"] == "kaiming_normal" for layer in linears)
    for q in (p, fc):
        assert q.task.options == {"squares": 12, "n_samples": 6561, "split": "hannet"}
        assert (q.train.optimizer, q.train.momentum, q.task.batch_size, q.task.loss) == ("sgd", 0.9, 100, "mse")
        assert (q.train.scheduler, q.train.milestones, q.train.gamma) == ("step", [0.5, 0.7, 0.9], 0.2)
        assert abs(q.train.epochs * 17 - 40_000) <= 17  # 1,640 points / batch 100 = 17 steps per epoch


def test_pinet_blog_presets_are_the_blogs_polynet():
    for key in ("pinet-mnist", "pinet-cifar10"):
        p = load_builtin(key)
        convs = [(layer.params["out_channels"], layer.params["kernel_size"], layer.params.get("stride", 1),
                  layer.params["padding"]) for layer in p.model.layers if layer.type == "ProductConv2d"]
        assert convs == [(16, 3, 1, 1), (32, 4, 2, 1), (64, 4, 2, 1), (128, 2, 1, 0), (256, 4, 2, 1)]
        assert [layer.type for layer in p.model.layers[5:]] == ["Flatten", "Linear"]
        assert infer_shapes(p).layers[4].output_shape == (256, 3, 3)
        assert (p.train.optimizer, p.train.lr, p.train.scheduler, p.train.epochs) == ("adam", 1e-3, "none", 10)
        assert (p.task.batch_size, p.task.normalize, p.task.augment) == (64, False, [])
    pi18 = load_builtin("pinet18-cifar10")
    blocks = [layer for layer in pi18.model.layers if layer.type == "PiBlock2d"]
    assert all(b.params["zero_init_residual"] and b.params["conv_init"] == "kaiming_normal_fan_out" for b in blocks)
    assert pi18.model.layers[-1].params["init"] == "normal_0.01"


def test_twist_and_going_deeper_presets_follow_the_originals():
    twist = load_builtin("twist-resnet-cifar10")
    assert [layer.type for layer in twist.model.layers[:3]] == ["Conv2d", "BatchNorm", "ReLU"]
    assert twist.task.augment_options == {"affine": {"translate": 0.3, "interpolation": "nearest"}}
    assert {b.params.get("twist_init") for b in twist.model.layers if b.params.get("twist")} == {"random"}
    parity = load_builtin("infinite-parity")
    opts = parity.task.options
    train_size = opts["n_samples"] - round(opts["n_samples"] * parity.task.val_split)
    assert opts["fresh_batches"] and parity.train.epochs * train_size // parity.task.batch_size == 100_000
    # experiment_00_xor.py on Keras 2.1.2: every Dense glorot-uniform with zero bias, BatchNormalization's
    # momentum 0.99 / epsilon 1e-3, a frozen Dense(1, sigmoid) head with binary cross-entropy
    linears = [parity.model.layers[0], parity.model.layers[2].body[0], parity.model.layers[3]]
    assert all(layer.type == "Linear" and layer.params["init"] == "glorot_uniform" for layer in linears)
    assert parity.model.layers[2].body[1].params == {"eps": 1e-3, "momentum": 0.01}
    assert parity.task.loss == "bce" and infer_shapes(parity).output_shape == (1,)
    mnist = load_builtin("infinite-mnist")
    frozen = [i for i, layer in enumerate(mnist.model.layers) if layer.trainable is False]
    assert all(mnist.model.layers[i + 1].type != "ReLU" for i in frozen[:-1])  # Keras layers are linear
    assert mnist.train.optimizer_options == {"rho": 0.95, "eps": 1e-8} and mnist.task.normalize is False


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
