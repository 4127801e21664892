"""Cross-family contract of the palette: exports, docs, reprs, dtypes, autocast, CUDA, import hygiene."""
from __future__ import annotations

import ast
import pathlib
import sys
import warnings
from typing import Callable

import pytest
import torch
from torch import nn

import layers
from layers import (
    CCPPolynomial,
    DepthGate,
    HanLayer,
    HanStack,
    HouseholderLinear,
    InfiniteDepth,
    PiBlock2d,
    ProductConv2d,
    SoftPool2d,
    TwistBasicBlock,
    TwistConv2d,
    ZConv2d,
    ZLinear,
)

LAYERS_DIR = pathlib.Path(layers.__file__).parent

PUBLIC = [
    "softmean", "ZLinear", "ZConv2d", "SoftPool2d", "HouseholderLinear", "HanLayer", "HanStack",
    "ProductConv2d", "PiBlock2d", "CCPPolynomial", "TwistConv2d", "TwistBasicBlock", "DepthGate",
    "InfiniteDepth",
]


def _twisted() -> TwistConv2d:
    m = TwistConv2d(3, 4, stride=2)
    if not m.twist_weight.is_meta:  # the first meta-device normal_ costs seconds of lazy imports
        with torch.no_grad():
            m.twist_weight.normal_()
    return m


# name -> (factory, input shape, output shape)
CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], tuple[int, ...]]] = {
    "ZLinear": (lambda: ZLinear(8, 5), (4, 8), (4, 5)),
    "ZLinear-gated": (lambda: ZLinear(8, 5, share_weights=False, per_route_hardness=False), (4, 8), (4, 5)),
    "ZConv2d": (lambda: ZConv2d(3, 4, kernel_size=3, padding=1), (2, 3, 8, 8), (2, 4, 8, 8)),
    "ZConv2d-gated": (lambda: ZConv2d(3, 4, kernel_size=3, stride=2, share_weights=False), (2, 3, 9, 9),
                      (2, 4, 4, 4)),
    "SoftPool2d": (lambda: SoftPool2d(3, init_hardness=1.0), (2, 3, 8, 8), (2, 3, 4, 4)),
    "SoftPool2d-overlap": (lambda: SoftPool2d(3, kernel_size=3, stride=2), (2, 3, 9, 9), (2, 3, 4, 4)),
    "HouseholderLinear": (lambda: HouseholderLinear(8), (4, 8), (4, 8)),
    "HanLayer": (lambda: HanLayer(8), (4, 8), (4, 8)),
    "HanStack": (lambda: HanStack(8, depth=4), (4, 8), (4, 8)),
    "ProductConv2d": (lambda: ProductConv2d(3, 4, kernel_size=3, padding=1), (2, 3, 8, 8), (2, 4, 8, 8)),
    "PiBlock2d": (lambda: PiBlock2d(3, 6, stride=2, product_conv1x1=True), (2, 3, 8, 8), (2, 6, 4, 4)),
    "CCPPolynomial": (lambda: CCPPolynomial(8, 6, 3, degree=3), (4, 8), (4, 3)),
    "TwistConv2d": (_twisted, (2, 3, 8, 10), (2, 4, 4, 5)),
    "TwistBasicBlock": (lambda: TwistBasicBlock(3, 4, stride=2), (2, 3, 8, 8), (2, 4, 4, 4)),
    "InfiniteDepth": (lambda: InfiniteDepth(lambda i: nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8)),
                                            init_w=2.5, max_depth=4), (4, 8), (4, 8)),
}


def test_all_exports() -> None:
    assert sorted(layers.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(layers, name) is not None


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != "softmean"])
def test_docstring_has_equation_and_reference(name: str) -> None:
    cls = getattr(layers, name)
    doc = cls.__doc__ or ""
    module_doc = sys.modules[cls.__module__].__doc__ or ""
    assert "=" in doc, f"{name}: docstring must state the equation"
    assert any(key in doc + module_doc for key in ("arXiv", "github.com")), f"{name}: reference missing"
    assert any(ch.isdigit() for ch in module_doc)  # a year / arXiv id / commit


@pytest.mark.parametrize("name", sorted(CASES))
def test_extra_repr_shows_settings(name: str) -> None:
    m = CASES[name][0]()
    assert m.extra_repr(), f"{name}: empty extra_repr"
    assert type(m).__name__ + "(" in repr(m)
    assert DepthGate(2.0).extra_repr() == "w=2, slope=1"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_backward_dtype(name: str, dtype: torch.dtype) -> None:
    factory, in_shape, out_shape = CASES[name]
    torch.manual_seed(0)
    m = factory().to(dtype)
    x = torch.randn(*in_shape, dtype=dtype, requires_grad=True)
    y = m(x)
    assert y.shape == out_shape and y.dtype == dtype
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bf16_autocast_smoke(name: str) -> None:
    factory, in_shape, out_shape = CASES[name]
    torch.manual_seed(0)
    m = factory()
    x = torch.randn(*in_shape, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
        loss = y.float().square().mean()
    assert y.shape == out_shape and y.dtype in (torch.float32, torch.bfloat16)
    assert torch.isfinite(y).all()
    loss.backward()
    assert torch.isfinite(x.grad).all()
    with torch.no_grad():
        reference = m(x)
    torch.testing.assert_close(y.float(), reference, rtol=0.1, atol=0.1)
    for p in m.parameters():
        assert p.dtype == torch.float32
        assert p.grad is None or torch.isfinite(p.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("name", sorted(CASES))
def test_cuda_forward_matches_cpu(name: str) -> None:
    factory, in_shape, out_shape = CASES[name]
    torch.manual_seed(0)
    m = factory()
    x = torch.randn(*in_shape)
    expected = m(x)
    m_cuda = m.to("cuda")
    y = m_cuda(x.cuda())
    assert y.device.type == "cuda" and y.shape == out_shape
    torch.testing.assert_close(y.cpu(), expected, rtol=1e-3, atol=1e-3)  # TF32 convolutions
    with torch.autocast("cuda", dtype=torch.bfloat16):
        z = m_cuda(x.cuda().requires_grad_(True))
    assert torch.isfinite(z).all()
    z.float().square().mean().backward()


@pytest.mark.parametrize("name", sorted(CASES))
def test_deepcopy_and_state_dict_round_trip(name: str) -> None:
    factory, in_shape, _ = CASES[name]
    torch.manual_seed(1)
    a = factory().eval()
    torch.manual_seed(2)
    b = factory().eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(*in_shape)
    assert torch.equal(a(x), b(x))


def test_layers_import_only_torch_and_the_standard_library() -> None:
    allowed = {"torch", "math", "typing", "warnings", "__future__"}
    for path in LAYERS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import inside layers/
                    continue
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_torchscript_trace(name: str) -> None:
    """Every layer traces (the export path); InfiniteDepth's trace freezes the current depth."""
    factory, in_shape, _ = CASES[name]
    torch.manual_seed(0)
    m = factory().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarning for the shape checks / InfiniteDepth's w.item()
        traced = torch.jit.trace(m, (torch.randn(*in_shape),))
    x = torch.randn(*in_shape)
    torch.testing.assert_close(traced(x), m(x))


def test_meta_device_construction_and_repr() -> None:
    with torch.device("meta"):
        for name, (factory, _, _) in sorted(CASES.items()):
            m = factory()
            assert all(p.is_meta for p in m.parameters()), name
            assert repr(m)
