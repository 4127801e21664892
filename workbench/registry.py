"""The layer registry: one :class:`LayerEntry` per palette item, the single source of truth.

Each entry carries what the UI shows (type, family, one-line summary, equation, paper, typed
parameter schema, the key parameters for an editor card) and what the core needs (the shape rule
``output_shape(in_shape, params, ctx)`` and ``build(in_shape, params, ctx) -> nn.Module``).
Shapes are per sample (no batch dimension): ``(features,)`` or ``(channels, height, width)``.
``in_features``/``in_channels`` are never parameters: they come from the input shape. The
placeholders ``"same"`` (the input's feature/channel count) and ``"classes"`` (the dataset's output
size, ``ctx.classes``) are resolved here.

Adding a layer to the palette is one ``_entry(...)`` call below. Importing this module does not
import torch; ``build`` imports ``layers``/``torch`` lazily.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from workbench.params import ParamSpec
from workbench.problems import Problem, SpecError, shown_value, unknown_key_problem

__all__ = [
    "ParamSpec", "LayerEntry", "BuildContext", "ShapeError", "FAMILIES", "REGISTRY", "get_entry",
    "entries_by_family", "default_params", "resolve_params", "check_params", "shape_str", "shown_value",
]

Shape = tuple[int, ...]
FAMILIES = ("Z layers", "Han layers", "Π-Net", "Twist", "Infinite depth", "Vanilla", "Containers")


class ShapeError(ValueError):
    """A layer cannot take its input shape: ``message`` says why, ``fix`` what to change."""

    def __init__(self, message: str, fix: str = "") -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message}; {fix}" if fix else message)


@dataclass(frozen=True)
class BuildContext:
    """What a layer needs beyond its input shape and parameters.

    ``classes``: the model's output size (for ``"classes"``): the dataset's, 1 under loss bce.
    ``body``: a container's sub-layer specs. ``sequence_shape(body, in_shape)`` and
    ``build_sequence(body, in_shape)`` are supplied by :mod:`workbench.spec` so containers can nest
    any layers."""

    classes: int = 10
    body: tuple[Any, ...] = ()
    sequence_shape: Callable[[Sequence[Any], Shape], Shape] | None = None
    build_sequence: Callable[[Sequence[Any], Shape], Any] | None = None


@dataclass(frozen=True)
class LayerEntry:
    """One palette item. ``output_shape``/``build`` accept raw JSON params (defaults are filled and
    placeholders resolved here) and raise :class:`ShapeError` for an input they cannot take."""

    type: str
    family: str
    summary: str
    equation: str
    paper: str
    params: tuple[ParamSpec, ...]
    key_params: tuple[str, ...]
    container: bool = False
    shape_fn: Callable[[Shape, dict[str, Any], BuildContext], Shape] = field(default=None, repr=False, compare=False)
    build_fn: Callable[[Shape, dict[str, Any], BuildContext], Any] = field(default=None, repr=False, compare=False)

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def output_shape(self, in_shape: Sequence[int], params: Mapping[str, Any] | None = None,
                     ctx: BuildContext | None = None) -> Shape:
        ctx = ctx or BuildContext()
        shape = tuple(int(s) for s in in_shape)
        resolved = resolve_params(self, params or {}, shape, ctx)
        return tuple(int(s) for s in self.shape_fn(shape, resolved, ctx))

    def build(self, in_shape: Sequence[int], params: Mapping[str, Any] | None = None,
              ctx: BuildContext | None = None) -> Any:
        ctx = ctx or BuildContext()
        shape = tuple(int(s) for s in in_shape)
        resolved = resolve_params(self, params or {}, shape, ctx)
        self.shape_fn(shape, resolved, ctx)  # refuse impossible shapes with the user message
        return self.build_fn(shape, resolved, ctx)


# ------------------------------------------------------------------------------------- param helpers
def check_params(entry: LayerEntry, params: Mapping[str, Any]) -> list[Problem]:
    """Problems with a layer's raw params; paths are relative (``params.routes``)."""
    problems: list[Problem] = []
    names = entry.param_names
    for key, value in params.items():
        if key not in names:
            if key in ("in_features", "in_channels", "features", "channels"):
                problems.append(Problem(f"params.{key}", f"{key} is not a parameter of {entry.type}: "
                                        "it is inferred from the previous layer's output shape",
                                        f"remove {key}"))
                continue
            problems.append(unknown_key_problem(f"params.{key}", key, list(names), kind="parameter",
                                                owner=entry.type))
            continue
        bad = entry.param(key).check(value)
        if bad is not None:
            problems.append(Problem(f"params.{key}", bad[0], bad[1]))
    return problems


def resolve_params(entry: LayerEntry, params: Mapping[str, Any], in_shape: Shape, ctx: BuildContext) -> dict[str, Any]:
    """Defaults filled in, ``"same"`` → the input's feature/channel count, ``"classes"`` → ``ctx.classes``."""
    out: dict[str, Any] = {}
    for spec in entry.params:
        value = params.get(spec.name, spec.default)
        if value == "same" and "same" in spec.placeholders:
            if not in_shape:
                raise ShapeError("cannot resolve \"same\" without an input shape", "give a number instead")
            value = int(in_shape[0])
        elif value == "classes" and "classes" in spec.placeholders:
            value = int(ctx.classes)
        out[spec.name] = value
    return out


def shape_str(shape: Sequence[int]) -> str:
    """``(1, 28, 28)`` → ``"1×28×28"``; a flat vector ``(784,)`` → ``"784"``."""
    return "×".join(str(int(s)) for s in shape) if shape else "scalar"


# ----------------------------------------------------------------------------------- shape helpers
def _need_vector(type_name: str, in_shape: Shape) -> int:
    if len(in_shape) != 1:
        raise ShapeError(f"{type_name} acts on a flat feature vector but gets a {shape_str(in_shape)} input",
                         "add a Flatten before it")
    return in_shape[0]


def _need_image(type_name: str, in_shape: Shape) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        what = f"a flat vector of {in_shape[0]} features" if len(in_shape) == 1 else f"a {shape_str(in_shape)} input"
        raise ShapeError(f"{type_name} needs an image (channels×height×width) but gets {what}",
                         "move it before the Flatten, or use a Linear-type layer here")
    return in_shape[0], in_shape[1], in_shape[2]


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _spatial(type_name: str, in_shape: Shape, kernel: int, stride: int, padding: int,
             what: str = "kernel", fix: str = "lower kernel_size or remove a pooling layer") -> tuple[int, int]:
    _, h, w = _need_image(type_name, in_shape)
    if h + 2 * padding < kernel or w + 2 * padding < kernel:
        pad = f" with padding {padding}" if padding else ""
        raise ShapeError(f"{what} {kernel} does not fit a {h}×{w} input{pad}", fix)
    return _conv_out(h, kernel, stride, padding), _conv_out(w, kernel, stride, padding)


def _conv_shape(in_shape: Shape, p: dict[str, Any], type_name: str, out_key: str = "out_channels") -> Shape:
    pad = p.get("padding", 0)
    h, w = _spatial(type_name, in_shape, p["kernel_size"], p.get("stride", 1), pad)
    return (p[out_key], h, w)


def _pool_shape(in_shape: Shape, p: dict[str, Any], type_name: str) -> Shape:
    c, _, _ = _need_image(type_name, in_shape)
    pad = p.get("padding", 0)
    if pad * 2 > p["kernel_size"]:
        raise ShapeError(f"padding {pad} is more than half of kernel_size {p['kernel_size']}",
                         "lower padding to at most kernel_size // 2")
    h, w = _spatial(type_name, in_shape, p["kernel_size"], p["stride"], pad, what="pooling window",
                    fix="lower kernel_size or remove an earlier pooling layer")
    return (c, h, w)


def _same_shape(in_shape: Shape, p: dict[str, Any], ctx: BuildContext) -> Shape:
    return in_shape


def _vector_same(type_name: str) -> Callable[[Shape, dict[str, Any], BuildContext], Shape]:
    def rule(in_shape: Shape, p: dict[str, Any], ctx: BuildContext) -> Shape:
        _need_vector(type_name, in_shape)
        return in_shape
    return rule


# -------------------------------------------------------------------------------------- the entries
REGISTRY: dict[str, LayerEntry] = {}


def _entry(type: str, family: str, summary: str, equation: str, paper: str, params: Sequence[ParamSpec],
           key_params: Sequence[str], shape: Callable, build: Callable, container: bool = False) -> LayerEntry:
    assert family in FAMILIES, family
    entry = LayerEntry(type=type, family=family, summary=summary, equation=equation, paper=paper,
                       params=tuple(params), key_params=tuple(key_params), container=container,
                       shape_fn=shape, build_fn=build)
    REGISTRY[type] = entry
    return entry


def _P(  # noqa: N802 - a short name: it fills the declaration tables
        name: str, kind: str, default: Any, help: str, lo: float | None = None, hi: float | None = None,
        choices: Sequence[Any] = (), placeholders: Sequence[str] = ()) -> ParamSpec:
    return ParamSpec(name, kind, default, help, lo, hi, tuple(choices), tuple(placeholders))


def _out_features(default: Any = 64) -> ParamSpec:
    return _P("out_features", "int", default, 'output features; "same" keeps the width, "classes" is the '
              "dataset's class/target count (1 under loss bce)", 1, 1_000_000, placeholders=("same", "classes"))


def _out_channels(default: Any = 16) -> ParamSpec:
    return _P("out_channels", "int", default, 'output channels; "same" keeps the channel count', 1, 100_000,
              placeholders=("same",))


def _kernel(default: int = 3, odd: bool = False) -> ParamSpec:
    return _P("kernel_size", "int", default, "square kernel side in pixels" + (" (odd)" if odd else ""), 1, 64)


def _stride(default: int = 1) -> ParamSpec:
    return _P("stride", "int", default, "step between kernel positions in pixels", 1, 64)


def _padding(default: int = 0) -> ParamSpec:
    return _P("padding", "int", default, "zero padding on each side in pixels (kernel_size // 2 keeps the size)",
              0, 64)


# init choices per layer kind: the names of layers.init's tables (LINEAR_INITS, CONV_INITS,
# HOUSEHOLDER_INITS), repeated here so importing the registry does not import torch; a test keeps
# the two equal.
LINEAR_INITS = ("default", "orthogonal", "kaiming_normal", "xavier_normal", "normal_0.01", "glorot_uniform")
CONV_INITS = ("default", "kaiming_normal", "kaiming_normal_fan_out", "orthogonal")
HOUSEHOLDER_INITS = ("orthogonal", "kaiming_normal", "xavier_normal")

_BIAS = _P("bias", "bool", True, "learn an additive bias")
_ROUTES = _P("routes", "int", 4, "parallel routes merged by the learned soft mean (1 = the plain layer)", 1, 64)
_PER_ROUTE = _P("per_route_hardness", "bool", True, "one hardness per (output, route) instead of per output")
_SHARE = _P("share_weights", "bool", True, "values also gate the soft mean (False: a second layer gives the "
            "gate logits, 2× memory)")
_Z_PAPER = ("Zain (ZdsAlpha), “Z layers: a new kind of activation-free layer”, 2020–2021, github.com/ZdsAlpha/Z "
            "(no paper)")
_HAN_PAPER = ("Yueyao Yu, Yin Zhang, “Householder-Absolute Neural Layers For High Variability and Deep "
              "Trainability” (later “A Lightweight and Gradient-Stable Neural Layer”), 2021, arXiv 2106.04088")
_PI_PAPER = ("Grigorios Chrysos, Stylianos Moschoglou, Giorgos Bouritsas, Yannis Panagakis, Jiankang Deng, "
             "Stefanos Zafeiriou, “Π-nets: Deep Polynomial Neural Networks”, CVPR 2020, arXiv 2003.03828")
_TWIST_PAPER = "Yao Liu, “ResNet with a twist”, 2020, github.com/liuyao12/pytorch-cifar (notebooks; no paper)"
_DEPTH_PAPER = ("Benjamin Meier, “Going Deeper: Infinite Deep Neural Networks”, ZHAW, 2017, "
                "github.com/kutoga/going_deeper (no arXiv)")
_TORCH = ("PyTorch torch.nn (Paszke et al., “PyTorch: An Imperative Style, High-Performance Deep Learning Library”, "
          "NeurIPS 2019, arXiv 1912.01703)")


# Z layers --------------------------------------------------------------------------------------------
def _zlinear_shape(s: Shape, p: dict, ctx: BuildContext) -> Shape:
    _need_vector("ZLinear", s)
    return (p["out_features"],)


def _zlinear_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from layers.z import ZLinear
    return ZLinear(s[0], p["out_features"], routes=p["routes"], bias=p["bias"],
                   per_route_hardness=p["per_route_hardness"], share_weights=p["share_weights"])


_entry("ZLinear", "Z layers", "Linear layer with routes merged by a learned-hardness soft mean",
       "h = Wx + b ∈ ℝ^{out·R};  y_o = Σ_r h_{o,r} · softmax_r(z_{o,r} h_{o,r})", _Z_PAPER,
       [_out_features("classes"), _ROUTES, _BIAS, _PER_ROUTE, _SHARE], ("out_features", "routes"),
       _zlinear_shape, _zlinear_build)


def _zconv_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from layers.z import ZConv2d
    return ZConv2d(s[0], p["out_channels"], p["kernel_size"], routes=p["routes"], stride=p["stride"],
                   padding=p["padding"], bias=p["bias"], per_route_hardness=p["per_route_hardness"],
                   share_weights=p["share_weights"])


_entry("ZConv2d", "Z layers", "2-D convolution with routes merged by a learned-hardness soft mean",
       "h = K∗x + b (out·R channels);  y_o = Σ_r h_{o,r} · softmax_r(z_{o,r} h_{o,r})", _Z_PAPER,
       [_out_channels(16), _kernel(3), _ROUTES, _stride(), _padding(), _BIAS, _PER_ROUTE, _SHARE],
       ("out_channels", "kernel_size", "routes"),
       lambda s, p, c: _conv_shape(s, p, "ZConv2d"), _zconv_build)


def _softpool_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from layers.z import SoftPool2d
    return SoftPool2d(s[0], kernel_size=p["kernel_size"], stride=p["stride"], init_hardness=p["init_hardness"])


_entry("SoftPool2d", "Z layers", "Spatial pooling by a soft mean with a learned hardness per channel",
       "y_c = Σ_{i∈window} a_i · softmax_i(z_c a_i)   (z=0: average, z→+∞: max)", _Z_PAPER,
       [_P("kernel_size", "int", 2, "pooling window side in pixels", 1, 64),
        _P("stride", "int", 2, "step between windows in pixels", 1, 64),
        _P("init_hardness", "float", 0.0, "initial hardness z (0 starts as average pooling)", -100.0, 100.0)],
       ("kernel_size",), lambda s, p, c: _pool_shape(s, p, "SoftPool2d"), _softpool_build)


# Han layers ------------------------------------------------------------------------------------------
def _han_build(cls_name: str) -> Callable:
    def build(s: Shape, p: dict, ctx: BuildContext) -> Any:
        import layers.han as han
        cls = getattr(han, cls_name)
        if cls_name == "HanStack":
            return cls(s[0], p["depth"], bias=p["bias"], init=p["init"])
        return cls(s[0], bias=p["bias"], init=p["init"])
    return build


_HAN_INIT = _P("init", "choice", "orthogonal", "initialisation of the Householder vector u: orthogonal (a random "
               "unit vector, HanNet's --initial orth), kaiming_normal or xavier_normal (its other choices)",
               choices=HOUSEHOLDER_INITS)
_entry("HouseholderLinear", "Han layers", "Affine Householder reflection (orthogonal, 2·d parameters)",
       "y = (I − 2uuᵀ/uᵀu) x + b", _HAN_PAPER, [_BIAS, _HAN_INIT], ("bias",),
       _vector_same("HouseholderLinear"), _han_build("HouseholderLinear"))
_entry("HanLayer", "Han layers", "Absolute value of a Householder reflection: norm- and gradient-preserving",
       "y = |(I − 2uuᵀ/uᵀu) x + b|", _HAN_PAPER, [_BIAS, _HAN_INIT], ("bias",),
       _vector_same("HanLayer"), _han_build("HanLayer"))
_entry("HanStack", "Han layers", "depth Han-layers in sequence at constant width (orthogonal Jacobian)",
       "y = |H_D(… |H_1 x + b_1| …) + b_D|", _HAN_PAPER,
       [_P("depth", "int", 4, "number of Han-layers", 1, 10_000), _BIAS, _HAN_INIT], ("depth",),
       _vector_same("HanStack"), _han_build("HanStack"))


# Π-Net -----------------------------------------------------------------------------------------------
def _product_conv_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from layers.pinet import ProductConv2d
    return ProductConv2d(s[0], p["out_channels"], p["kernel_size"], stride=p["stride"], padding=p["padding"])


_entry("ProductConv2d", "Π-Net", "Hadamard product of two convolutions (degree 2, no activation)",
       "y = (A∗x + a) ⊙ (B∗x + b)", _PI_PAPER,
       [_out_channels(16), _kernel(3), _stride(), _padding(1)], ("out_channels", "kernel_size"),
       lambda s, p, c: _conv_shape(s, p, "ProductConv2d"), _product_conv_build)


def _piblock_shape(s: Shape, p: dict, ctx: BuildContext) -> Shape:
    return _conv_shape(s, {"out_channels": p["out_channels"], "kernel_size": 3, "stride": p["stride"],
                           "padding": 1}, "PiBlock2d")


def _piblock_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from layers.pinet import PiBlock2d
    return PiBlock2d(s[0], p["out_channels"], stride=p["stride"], product_conv1x1=p["product_conv1x1"],
                     zero_init_product=p["zero_init_product"], zero_init_residual=p["zero_init_residual"],
                     conv_init=p["conv_init"])


_entry("PiBlock2d", "Π-Net", "PiNet residual block without activation: linear branch + skip + normalised product",
       "t = BN(conv(BN(conv x))),  s = x or BN(conv₁ₓ₁ x),  y = t + s + BN(t ⊙ s)", _PI_PAPER,
       [_out_channels(64), _P("stride", "int", 1, "stride of the first 3×3 conv (2 halves the size)", 1, 4),
        _P("product_conv1x1", "bool", False, "1×1 conv on the product before its BatchNorm"),
        _P("zero_init_product", "bool", False, "start with the product term at zero (γ of its BN = 0; not in "
           "the official code)"),
        _P("zero_init_residual", "bool", False, "γ of the second BN = 0: every block starts as y = s (the official "
           "ResNet default)"),
        _P("conv_init", "choice", "default", "conv weight initialisation: default (PyTorch's) or "
           "kaiming_normal_fan_out (the official KaimingInit)", choices=CONV_INITS)],
       ("out_channels", "stride"), _piblock_shape, _piblock_build)


def _ccp_shape(s: Shape, p: dict, ctx: BuildContext) -> Shape:
    _need_vector("CCPPolynomial", s)
    return (p["out_features"],)


def _ccp_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from layers.pinet import CCPPolynomial
    return CCPPolynomial(s[0], p["hidden_features"], p["out_features"], degree=p["degree"])


_entry("CCPPolynomial", "Π-Net", "Coupled CP polynomial of degree N in the input (Hadamard recursion)",
       "x₁ = U₁ᵀz;  x_n = (U_nᵀz) ⊙ x_{n−1} + x_{n−1};  y = C x_N + β", _PI_PAPER,
       [_P("hidden_features", "int", 64, 'hidden width; "same" keeps the input width', 1, 1_000_000,
           placeholders=("same",)),
        _out_features("classes"), _P("degree", "int", 3, "polynomial degree N", 1, 32)],
       ("hidden_features", "degree", "out_features"), _ccp_shape, _ccp_build)


# Twist -----------------------------------------------------------------------------------------------
def _twist_conv_shape(s: Shape, p: dict, ctx: BuildContext) -> Shape:
    if p["kernel_size"] % 2 == 0:
        raise ShapeError(f"TwistConv2d needs an odd kernel_size (its x-kernel is odd under a 180° rotation about "
                         f"the kernel centre), got {p['kernel_size']}", "use kernel_size 1, 3, 5, …")
    return _conv_shape(s, p, "TwistConv2d")


def _twist_conv_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from layers.twist import TwistConv2d
    return TwistConv2d(s[0], p["out_channels"], kernel_size=p["kernel_size"], stride=p["stride"],
                       padding=p["padding"], bias=p["bias"], twist_init=p["twist_init"])


_TWIST_INIT = _P("twist_init", "choice", "zero", "zero: start as the plain convolution; random: the original's "
                 "random twist (PyTorch's conv init, projected to its odd part)", choices=("zero", "random"))
_entry("TwistConv2d", "Twist", "Convolution whose coefficients vary affinely with position (PDE view)",
       "y = K∗x + X⊙(Kₓ∗x) + Y⊙(K_y∗x),  Kₓ odd under 180°,  K_y = rot90(Kₓ, −1)", _TWIST_PAPER,
       [_out_channels(16), _kernel(3, odd=True), _stride(), _padding(1),
        _P("bias", "bool", False, "learn an additive bias"),
        _TWIST_INIT],
       ("out_channels", "kernel_size", "stride"), _twist_conv_shape, _twist_conv_build)


def _twist_block_shape(s: Shape, p: dict, ctx: BuildContext) -> Shape:
    return _conv_shape(s, {"out_channels": p["out_channels"], "kernel_size": 3, "stride": p["stride"],
                           "padding": 1}, "TwistBasicBlock")


def _twist_block_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from layers.twist import TwistBasicBlock
    return TwistBasicBlock(s[0], p["out_channels"], stride=p["stride"], twist=p["twist"], twist_init=p["twist_init"])


_entry("TwistBasicBlock", "Twist", "Pre-activation ResNet basic block whose two 3×3 convs are twisted",
       "y = conv₂′(relu(bn₂(conv₁′(relu(bn₁ x))))) + shortcut(relu(bn₁ x)),  shortcut = id or bn(conv₁ₓ₁)",
       _TWIST_PAPER,
       [_out_channels(64), _P("stride", "int", 1, "stride of the first conv (2 halves the size)", 1, 4),
        _P("twist", "bool", True, "twist both convs (False: a plain pre-activation block)"), _TWIST_INIT],
       ("out_channels", "stride", "twist"), _twist_block_shape, _twist_block_build)


# Infinite depth --------------------------------------------------------------------------------------
def _body_shape(type_name: str, s: Shape, ctx: BuildContext) -> Shape:
    if not ctx.body:
        raise ShapeError(f"{type_name} needs at least one layer in its body", 'add layers under "body"')
    if ctx.sequence_shape is None:
        raise ShapeError(f"{type_name}: no body shape rule supplied", "build containers through workbench.spec")
    return tuple(ctx.sequence_shape(ctx.body, s))


def _infinite_shape(s: Shape, p: dict, ctx: BuildContext) -> Shape:
    out = _body_shape("InfiniteDepth", s, ctx)
    if out != s:
        raise ShapeError(f"the body turns {shape_str(s)} into {shape_str(out)}, but InfiniteDepth needs a "
                         "shape-preserving body (its sub-layers are added to their input)",
                         'set out_features / out_channels to "same" and keep stride 1 and size-keeping '
                         "padding inside the body")
    return s


def _infinite_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from layers.depth import InfiniteDepth
    body, build_sequence = ctx.body, ctx.build_sequence
    return InfiniteDepth(lambda i: build_sequence(body, s), h=p["h"], init_w=float(p["init_w"]),
                         max_depth=p["max_depth"], residual=p["residual"], w_l2=float(p["w_l2"]),
                         f_l2=float(p["f_l2"]))


_entry("InfiniteDepth", "Infinite depth",
       "Meta-layer whose number of active sub-layers ⌈w⌉ is learned (body = the sub-layer template)",
       "δ_w(i) = relu(1 − exp(i − w));  g_{i+1} = h(g_i + δ_w(i) f_i(g_i));  out = h(g_⌈w⌉)", _DEPTH_PAPER,
       [_P("init_w", "float", 1.0, "initial depth parameter w (⌈w⌉ sub-layers active)", -10.0, 1000.0),
        _P("h", "choice", "relu", "idempotent merge function applied after every sub-layer",
           choices=("relu", "identity")),
        _P("max_depth", "int", 32, "sub-layers allocated (the depth can grow up to this)", 1, 1000),
        _P("residual", "bool", True, "g + δ·f (True) or (1−δ)·g + δ·f (False)"),
        _P("w_l2", "float", 1e-4, "L2 penalty λ_w·w² on the depth parameter (penalises depth)", 0.0, 100.0),
        _P("f_l2", "float", 1e-8, "conditional L2 on the BatchNorm γ of active sub-layers", 0.0, 100.0)],
       ("init_w", "max_depth", "h"), _infinite_shape, _infinite_build, container=True)


# Vanilla ---------------------------------------------------------------------------------------------
def _linear_shape(s: Shape, p: dict, ctx: BuildContext) -> Shape:
    _need_vector("Linear", s)
    return (p["out_features"],)


def _linear_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from torch import nn

    from layers.init import init_weight_
    return init_weight_(nn.Linear(s[0], p["out_features"], bias=p["bias"]), p["init"])


_entry("Linear", "Vanilla", "Fully connected affine map", "y = Wx + b", _TORCH,
       [_out_features(64), _BIAS,
        _P("init", "choice", "default", "weight initialisation: default (PyTorch's), orthogonal (HanNet), "
           "kaiming_normal (HanNet's FCNet), xavier_normal, normal_0.01 (Π-Net head, bias 0), glorot_uniform "
           "(Keras's Dense default, bias 0: Going Deeper)",
           choices=LINEAR_INITS)],
       ("out_features",), _linear_shape, _linear_build)


def _conv_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from torch import nn

    from layers.init import init_weight_
    return init_weight_(nn.Conv2d(s[0], p["out_channels"], p["kernel_size"], stride=p["stride"],
                                  padding=p["padding"], bias=p["bias"]), p["init"])


_entry("Conv2d", "Vanilla", "2-D convolution", "y = K∗x + b", _TORCH,
       [_out_channels(16), _kernel(3), _stride(), _padding(), _BIAS,
        _P("init", "choice", "default", "weight initialisation: default (PyTorch's), kaiming_normal, "
           "kaiming_normal_fan_out (Π-Net / ResNet, bias 0), orthogonal", choices=CONV_INITS)],
       ("out_channels", "kernel_size"), lambda s, p, c: _conv_shape(s, p, "Conv2d"), _conv_build)


def _pool_params(default_kernel: int = 2) -> list[ParamSpec]:
    return [_P("kernel_size", "int", default_kernel, "pooling window side in pixels", 1, 64),
            _P("stride", "int", default_kernel, "step between windows in pixels", 1, 64),
            _P("padding", "int", 0, "padding on each side in pixels (≤ kernel_size // 2)", 0, 32)]


def _maxpool_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from torch import nn
    return nn.MaxPool2d(p["kernel_size"], stride=p["stride"], padding=p["padding"])


def _avgpool_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from torch import nn
    return nn.AvgPool2d(p["kernel_size"], stride=p["stride"], padding=p["padding"])


_entry("MaxPool2d", "Vanilla", "Maximum over each window", "y_c = max_{i∈window} x_{c,i}", _TORCH,
       _pool_params(), ("kernel_size",), lambda s, p, c: _pool_shape(s, p, "MaxPool2d"), _maxpool_build)
_entry("AvgPool2d", "Vanilla", "Mean over each window", "y_c = mean_{i∈window} x_{c,i}", _TORCH,
       _pool_params(), ("kernel_size",), lambda s, p, c: _pool_shape(s, p, "AvgPool2d"), _avgpool_build)


def _adaptive_shape(s: Shape, p: dict, ctx: BuildContext) -> Shape:
    c, _, _ = _need_image("AdaptiveAvgPool2d", s)
    return (c, p["output_size"], p["output_size"])


def _adaptive_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from torch import nn
    return nn.AdaptiveAvgPool2d(p["output_size"])


_entry("AdaptiveAvgPool2d", "Vanilla", "Average pooling to a fixed output size (1 = global average)",
       "y_c = mean over each of output_size² regions", _TORCH,
       [_P("output_size", "int", 1, "output height and width in pixels", 1, 256)], ("output_size",),
       _adaptive_shape, _adaptive_build)


def _flatten_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from torch import nn
    return nn.Flatten()


_entry("Flatten", "Vanilla", "Flatten one sample into a feature vector", "y = vec(x)", _TORCH, [], (),
       lambda s, p, c: (math.prod(s),), _flatten_build)


def _dropout_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from torch import nn
    return nn.Dropout(p["p"])


_entry("Dropout", "Vanilla", "Zero each value with probability p while training (scaled by 1/(1−p))",
       "y = m ⊙ x / (1 − p),  m ~ Bernoulli(1 − p)", _TORCH,
       [_P("p", "float", 0.5, "drop probability", 0.0, 0.99)], ("p",), _same_shape, _dropout_build)


def _batchnorm_shape(s: Shape, p: dict, ctx: BuildContext) -> Shape:
    if len(s) not in (1, 2, 3):
        raise ShapeError(f"BatchNorm takes a feature vector, a channels×length or an image input, "
                         f"not {shape_str(s)}", "add a Flatten before it")
    return s


def _batchnorm_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from torch import nn
    cls = nn.BatchNorm2d if len(s) == 3 else nn.BatchNorm1d
    return cls(s[0], eps=float(p["eps"]), momentum=float(p["momentum"]), affine=p["affine"])


_entry("BatchNorm", "Vanilla", "Batch normalisation over features/channels (1d or 2d picked by shape)",
       "y = γ (x − μ_B) / √(σ²_B + ε) + β", _TORCH,
       [_P("eps", "float", 1e-5, "added to the variance", 1e-12, 1.0),
        _P("momentum", "float", 0.1, "running-statistics update rate", 0.0, 1.0),
        _P("affine", "bool", True, "learn γ and β")], (), _batchnorm_shape, _batchnorm_build)


def _layernorm_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from torch import nn
    return nn.LayerNorm(list(s), eps=float(p["eps"]), elementwise_affine=p["elementwise_affine"])


_entry("LayerNorm", "Vanilla", "Normalise each sample over all its values",
       "y = γ (x − μ) / √(σ² + ε) + β  (per sample)", _TORCH,
       [_P("eps", "float", 1e-5, "added to the variance", 1e-12, 1.0),
        _P("elementwise_affine", "bool", True, "learn γ and β per value")], (), _same_shape, _layernorm_build)


def _simple(type_name: str, summary: str, equation: str, make: Callable[[], Any], family: str = "Vanilla",
            paper: str = _TORCH) -> None:
    _entry(type_name, family, summary, equation, paper, [], (), _same_shape, lambda s, p, c: make())


def _nn(name: str) -> Callable[[], Any]:
    def make() -> Any:
        from torch import nn
        return getattr(nn, name)()
    return make


def _abs() -> Any:
    from layers.basic import Abs
    return Abs()


_simple("ReLU", "Rectified linear unit (an activation: for baselines)", "y = max(0, x)", _nn("ReLU"))
_simple("Tanh", "Hyperbolic tangent (an activation: for baselines)", "y = tanh x", _nn("Tanh"))
_simple("GELU", "Gaussian error linear unit (an activation: for baselines)", "y = x Φ(x)", _nn("GELU"))
_simple("Identity", "Pass the input through unchanged", "y = x", _nn("Identity"))
_simple("Abs", "Element-wise absolute value (HanNet's non-linearity after its first Linear)", "y = |x|",
        _abs, paper=_HAN_PAPER)


# Containers ------------------------------------------------------------------------------------------
def _skip_stride(size_in: int, size_out: int) -> int | None:
    for stride in range(1, size_in + 1):
        if (size_in - 1) // stride + 1 == size_out:
            return stride
    return None


def _residual_plan(s: Shape, p: dict, ctx: BuildContext) -> tuple[Shape, str, int]:
    out = _body_shape("Residual", s, ctx)
    if out == s and p["projection"] in ("auto", "identity"):
        return out, "identity", 1
    if p["projection"] == "identity":
        raise ShapeError(f"the body turns {shape_str(s)} into {shape_str(out)}, so an identity skip cannot be "
                         "added to it", 'set projection to "auto" or "conv1x1", or make the body keep the shape')
    if len(out) != len(s) or len(s) not in (1, 3):
        raise ShapeError(f"the body turns {shape_str(s)} into {shape_str(out)}; a skip can only project "
                         "feature vectors or images of the same kind", "keep the body's output the same kind "
                         "as its input (no Flatten inside a Residual)")
    if len(s) == 1:
        return out, "linear", 1
    strides = {_skip_stride(s[1], out[1]), _skip_stride(s[2], out[2])}
    if None in strides or len(strides) != 1:
        raise ShapeError(f"the body turns {shape_str(s)} into {shape_str(out)}, which no strided 1×1 conv skip "
                         "can match", "make the body keep the size or reduce it by a whole stride")
    return out, "conv1x1", strides.pop()


def _residual_build(s: Shape, p: dict, ctx: BuildContext) -> Any:
    from torch import nn

    from layers.basic import Residual
    out, kind, stride = _residual_plan(s, p, ctx)
    body = ctx.build_sequence(ctx.body, s)
    if kind == "identity":
        skip: nn.Module = nn.Identity()
    elif kind == "linear":
        skip = nn.Linear(s[0], out[0], bias=False)
    else:
        skip = nn.Conv2d(s[0], out[0], 1, stride=stride, bias=False)
    return Residual(body, skip)


_entry("Residual", "Containers", "Body plus a skip connection (identity, or a 1×1 conv / linear projection "
       "when the body changes the shape)", "y = body(x) + skip(x)",
       "Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun, “Deep Residual Learning for Image Recognition”, "
       "CVPR 2016, arXiv 1512.03385",
       [_P("projection", "choice", "auto", "skip: auto (identity when the shape is kept, else a projection), "
           "identity, or conv1x1 (a 1×1 conv for images, a linear map for vectors)",
           choices=("auto", "identity", "conv1x1"))],
       ("projection",), lambda s, p, c: _residual_plan(s, p, c)[0], _residual_build, container=True)


# ----------------------------------------------------------------------------------------- look-ups
def get_entry(type_name: str) -> LayerEntry:
    """The entry for ``type_name``; an unknown name is a :class:`SpecError` naming the closest ones."""
    entry = REGISTRY.get(type_name) if isinstance(type_name, str) else None
    if entry is not None:
        return entry
    close = difflib.get_close_matches(str(type_name), list(REGISTRY), n=3, cutoff=0.4)
    lowered = {name.lower(): name for name in REGISTRY}
    if isinstance(type_name, str) and type_name.lower() in lowered and lowered[type_name.lower()] not in close:
        close.insert(0, lowered[type_name.lower()])
    fix = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else \
        "pick a layer from the palette: " + ", ".join(REGISTRY)
    raise SpecError(Problem("type", f"unknown layer type '{type_name}'", fix))


def entries_by_family() -> dict[str, list[LayerEntry]]:
    """Entries grouped by family, families in :data:`FAMILIES` order, entries in palette order."""
    groups: dict[str, list[LayerEntry]] = {family: [] for family in FAMILIES}
    for entry in REGISTRY.values():
        groups[entry.family].append(entry)
    return groups


def default_params(type_name: str) -> dict[str, Any]:
    """``{name: default}`` for every parameter of ``type_name`` (a fresh dict)."""
    return {p.name: p.default for p in get_entry(type_name).params}
