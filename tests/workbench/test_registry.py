"""workbench.registry: one entry per palette item, typed params, shape rules that match the modules."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from workbench.registry import (
    FAMILIES,
    REGISTRY,
    BuildContext,
    ParamSpec,
    ShapeError,
    check_params,
    default_params,
    entries_by_family,
    get_entry,
)
from workbench.spec import LayerSpec, SpecError

PALETTE = {
    "Z layers": {"ZLinear", "ZConv2d", "SoftPool2d"},
    "Han layers": {"HouseholderLinear", "HanLayer", "HanStack"},
    "Π-Net": {"ProductConv2d", "PiBlock2d", "CCPPolynomial"},
    "Twist": {"TwistConv2d", "TwistBasicBlock"},
    "Infinite depth": {"InfiniteDepth"},
    "Vanilla": {"Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Dropout",
                "BatchNorm", "LayerNorm", "ReLU", "Tanh", "GELU", "Identity", "Abs"},
    "Containers": {"Residual"},
}
VECTOR = (12,)
IMAGE = (4, 12, 12)


def _input_for(entry) -> tuple[int, ...]:
    try:
        entry.output_shape(IMAGE, {}, BuildContext())
        return IMAGE
    except ShapeError:
        return VECTOR


def test_palette_is_complete_and_grouped():
    groups = entries_by_family()
    assert tuple(groups) == FAMILIES
    assert {family: {e.type for e in entries} for family, entries in groups.items()} == PALETTE


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_entry_metadata(type_name):
    entry = REGISTRY[type_name]
    assert entry.type == type_name and entry.family in FAMILIES
    assert entry.summary and entry.equation and entry.paper
    names = [p.name for p in entry.params]
    assert len(set(names)) == len(names)
    assert set(entry.key_params) <= set(names)
    assert "in_features" not in names and "in_channels" not in names
    for spec in entry.params:
        assert spec.help and spec.kind in ("int", "float", "bool", "choice", "str")
        assert spec.check(spec.default) is None, spec
    assert default_params(type_name) == {p.name: p.default for p in entry.params}


@pytest.mark.parametrize("type_name", sorted(t for t, e in REGISTRY.items() if not e.container))
def test_shape_rule_matches_built_module(type_name):
    entry = REGISTRY[type_name]
    shape = _input_for(entry)
    ctx = BuildContext(classes=7)
    out = entry.output_shape(shape, {}, ctx)
    torch.manual_seed(0)
    module = entry.build(shape, {}, ctx)
    assert isinstance(module, nn.Module)
    module.eval()
    y = module(torch.randn(2, *shape))
    assert tuple(y.shape) == (2, *out)


def test_placeholders_resolve():
    ctx = BuildContext(classes=7)
    assert REGISTRY["Linear"].output_shape((12,), {"out_features": "same"}, ctx) == (12,)
    assert REGISTRY["Linear"].output_shape((12,), {"out_features": "classes"}, ctx) == (7,)
    assert REGISTRY["ZConv2d"].output_shape((5, 9, 9), {"out_channels": "same", "padding": 1}, ctx) == (5, 9, 9)
    assert REGISTRY["ZLinear"].output_shape((12,), {}, ctx) == (7,)  # default out_features is "classes"


def test_kernel_too_big_message():
    with pytest.raises(ShapeError) as err:
        REGISTRY["ZConv2d"].output_shape((16, 3, 3), {"kernel_size": 5})
    assert str(err.value) == "kernel 5 does not fit a 3×3 input; lower kernel_size or remove a pooling layer"


@pytest.mark.parametrize("type_name", ["Linear", "ZLinear", "HanLayer", "HanStack", "HouseholderLinear",
                                       "CCPPolynomial"])
def test_vector_layers_reject_images_with_flatten_fix(type_name):
    with pytest.raises(ShapeError) as err:
        REGISTRY[type_name].output_shape((3, 4, 4), {})
    assert err.value.fix == "add a Flatten before it"


@pytest.mark.parametrize("type_name", ["Conv2d", "ZConv2d", "SoftPool2d", "ProductConv2d", "PiBlock2d",
                                       "TwistConv2d", "TwistBasicBlock", "MaxPool2d", "AvgPool2d",
                                       "AdaptiveAvgPool2d"])
def test_image_layers_reject_vectors(type_name):
    with pytest.raises(ShapeError) as err:
        REGISTRY[type_name].output_shape((10,), {})
    assert "needs an image" in err.value.message


def test_batchnorm_picks_dimension():
    assert isinstance(REGISTRY["BatchNorm"].build((6,), {}), nn.BatchNorm1d)
    assert isinstance(REGISTRY["BatchNorm"].build((6, 5, 5), {}), nn.BatchNorm2d)


def test_get_entry_suggests_closest():
    with pytest.raises(SpecError) as err:
        get_entry("Zconv2D")
    assert "'ZConv2d'" in err.value.problems[0].fix
    with pytest.raises(SpecError) as err:
        get_entry("HanLayr")
    assert "'HanLayer'" in err.value.problems[0].fix


def test_check_params_messages():
    entry = REGISTRY["ZConv2d"]
    problems = {p.path: p for p in check_params(entry, {"route": 4, "kernel_size": "5", "stride": 0,
                                                        "in_channels": 3, "bias": 1})}
    assert "did you mean 'routes'" in problems["params.route"].fix
    assert "whole number" in problems["params.kernel_size"].message
    assert "out of range" in problems["params.stride"].message
    assert "inferred" in problems["params.in_channels"].message
    assert "true or false" in problems["params.bias"].message
    assert check_params(entry, {"out_channels": "same"}) == []
    assert check_params(entry, {"out_channels": "classes"})  # not a placeholder for channels


def test_paramspec_kinds():
    spec = ParamSpec("p", "float", 0.5, "h", 0.0, 1.0)
    assert spec.check(1) is None and spec.check(0.25) is None
    assert spec.check(True) is not None and spec.check(math.nan) is not None and spec.check(1.5) is not None
    choice = ParamSpec("h", "choice", "relu", "h", choices=("relu", "identity"))
    assert choice.check("identity") is None and "one of" in choice.check("tanh")[0]


def _ctx(body, classes=10):
    from workbench.spec import _Walker
    walker = _Walker(classes, [])
    return BuildContext(classes=classes, body=tuple(body), sequence_shape=walker.sequence_shape,
                        build_sequence=walker.build_sequence)


def test_residual_projection_skips():
    entry = REGISTRY["Residual"]
    keep = [LayerSpec("Conv2d", {"out_channels": "same", "padding": 1})]
    down = [LayerSpec("Conv2d", {"out_channels": 8, "padding": 1, "stride": 2})]
    assert isinstance(entry.build((4, 8, 8), {}, _ctx(keep)).skip, nn.Identity)
    module = entry.build((4, 8, 8), {}, _ctx(down))
    assert isinstance(module.skip, nn.Conv2d) and module.skip.stride == (2, 2)
    assert module(torch.randn(2, 4, 8, 8)).shape == (2, 8, 4, 4)
    vec = entry.build((6,), {}, _ctx([LayerSpec("Linear", {"out_features": 3})]))
    assert isinstance(vec.skip, nn.Linear) and vec(torch.randn(2, 6)).shape == (2, 3)
    with pytest.raises(ShapeError) as err:
        entry.output_shape((4, 8, 8), {"projection": "identity"}, _ctx(down))
    assert "identity skip" in err.value.message
    with pytest.raises(ShapeError):
        entry.output_shape((4, 8, 8), {}, _ctx([LayerSpec("Flatten")]))


def test_infinite_depth_needs_shape_preserving_body():
    entry = REGISTRY["InfiniteDepth"]
    with pytest.raises(ShapeError) as err:
        entry.output_shape((6,), {}, _ctx([LayerSpec("Linear", {"out_features": 3})]))
    assert "shape-preserving" in err.value.message and '"same"' in err.value.fix
    module = entry.build((6,), {"max_depth": 3, "init_w": 2.0}, _ctx([LayerSpec("Linear", {"out_features": "same"})]))
    assert len(module.layers) == 3 and module.depth == 2
    assert module(torch.randn(2, 6)).shape == (2, 6)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_abs_layer():
    module = REGISTRY["Abs"].build((3,), {})
    x = torch.tensor([[-1.0, 2.0, -3.0]])
    assert torch.equal(module(x), x.abs())
    assert torch.jit.script(module)(x).tolist() == [[1.0, 2.0, 3.0]]


def test_twist_conv_needs_odd_kernel():
    with pytest.raises(ShapeError) as err:
        REGISTRY["TwistConv2d"].output_shape((3, 8, 8), {"kernel_size": 2})
    assert "odd kernel_size" in err.value.message
    assert REGISTRY["TwistConv2d"].output_shape((3, 8, 8), {"kernel_size": 5, "padding": 2}) == (16, 8, 8)
