"""Property tests: random specs and random JSON mutations of the built-in presets either build and run,
or are refused with validate problems / SpecError: never an unhandled exception.

Examples are derandomised (the same each run) so the shared suite is stable; raise max_examples
locally to search further."""
from __future__ import annotations

import copy
import json

import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from workbench.presets import PRESETS_DIR, builtin_keys
from workbench.registry import REGISTRY, ParamSpec
from workbench.spec import FORMAT, SpecError, build_model, infer_shapes, preset_from_dict, validate

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SMALL_DATASETS = ("digits", "parity", "checkerboard", "spirals", "diabetes")
SIMPLE_TYPES = sorted(t for t, e in REGISTRY.items() if not e.container)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 40),
                         st.floats(-10, 10, allow_nan=False), st.text(max_size=6),
                         st.sampled_from(["same", "classes", "relu", "auto"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(st.text(max_size=5), inner,
                                                                                 max_size=3)), max_leaves=6)

# keep "in range" values small so that random networks stay cheap to build
_SMALL_INT = {"out_features": 8, "out_channels": 6, "hidden_features": 8, "kernel_size": 5, "routes": 3,
              "stride": 3, "padding": 2, "depth": 3, "max_depth": 3, "degree": 3, "output_size": 3}


def _in_range(spec: ParamSpec) -> st.SearchStrategy:
    if spec.kind == "bool":
        return st.booleans()
    if spec.kind == "choice":
        return st.sampled_from(spec.choices)
    if spec.kind == "int":
        lo = int(spec.min if spec.min is not None else 0)
        hi = min(int(spec.max if spec.max is not None else lo + 8), _SMALL_INT.get(spec.name, lo + 8))
        base = st.integers(lo, max(lo, hi))
        return st.one_of(base, st.sampled_from(spec.placeholders)) if spec.placeholders else base
    if spec.kind == "float":
        lo = spec.min if spec.min is not None else -5.0
        hi = min(spec.max if spec.max is not None else 5.0, lo + 5.0)
        return st.floats(lo, hi, allow_nan=False)
    return st.text(max_size=4)


def _param_value(spec: ParamSpec) -> st.SearchStrategy:
    out_of_range = []
    if spec.min is not None:
        out_of_range.append(st.just(spec.min - 1))
    if spec.max is not None:
        out_of_range.append(st.just(spec.max + 1))
    return st.one_of(_in_range(spec), _in_range(spec), _in_range(spec), JSON_SCALARS, *out_of_range)


@st.composite
def layer_dicts(draw, depth: int = 0, clean: bool = False) -> dict:
    """A random layer; ``clean`` draws only known types and in-range parameters (shapes may still clash)."""
    if depth == 0 and draw(st.integers(0, 6)) == 0:
        type_name = draw(st.sampled_from(["InfiniteDepth", "Residual"]))
    elif not clean and draw(st.integers(0, 30)) == 0:
        type_name = draw(st.sampled_from(["Linaer", "zconv2d", "Foo"]))
    else:
        type_name = draw(st.sampled_from(SIMPLE_TYPES))
    layer: dict = {"type": type_name}
    entry = REGISTRY.get(type_name)
    if entry is not None:
        params = {}
        for spec in entry.params:
            if draw(st.booleans()):
                params[spec.name] = draw(_in_range(spec) if clean else _param_value(spec))
        if not clean and draw(st.integers(0, 15)) == 0:
            params["bogus"] = 1
        if params:
            layer["params"] = params
        if entry.container:
            layer["body"] = draw(st.lists(layer_dicts(depth + 1, clean), min_size=0 if not clean else 1,
                                          max_size=2))
    if draw(st.integers(0, 5)) == 0:
        layer["trainable"] = draw(st.booleans())
    return layer


def _check(document: dict, max_params: int = 3_000_000) -> None:
    """The property: a SpecError while reading, or validate problems (and build refuses), or a model that
    runs forward and backward with the inferred output shape."""
    try:
        preset = preset_from_dict(document)
    except SpecError:
        return
    problems = validate(preset)
    report = infer_shapes(preset)
    assert [(p.path, p.message) for p in report.problems] == [(p.path, p.message) for p in problems]
    if problems:
        try:
            build_model(preset)
        except SpecError:
            return
        raise AssertionError("build_model accepted a preset with problems")
    if report.total_params > max_params:
        return
    model = build_model(preset)
    assert sum(p.numel() for p in model.parameters()) == report.total_params
    model.eval()
    y = model(torch.randn(2, *report.input_shape))
    assert tuple(y.shape) == (2, *report.output_shape)
    if y.requires_grad:
        y.float().sum().backward()


@st.composite
def random_documents(draw) -> dict:
    clean = draw(st.integers(0, 3)) > 0
    layers = draw(st.lists(layer_dicts(clean=clean), min_size=0, max_size=5))
    if draw(st.integers(0, 3)) > 0:  # usually end with a classifier head, so many nets are valid
        layers += [{"type": "Flatten"}, {"type": draw(st.sampled_from(["Linear", "ZLinear", "CCPPolynomial"])),
                                         "params": {"out_features": "classes"}}]
    dataset = draw(st.sampled_from(SMALL_DATASETS + ("mnist",)))
    return {"format": FORMAT, "name": "random", "task": {"dataset": dataset}, "model": {"layers": layers}}


@SETTINGS
@given(document=random_documents())
def test_random_specs_build_or_explain(document):
    _check(document)


PRESET_DOCS = {key: json.loads((PRESETS_DIR / f"{key}.json").read_text(encoding="utf-8")) for key in builtin_keys()}


def _containers(value, path=()):
    """(path, container) for every dict/list inside a JSON document."""
    yield path, value
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, (dict, list)):
            yield from _containers(item, path + (key,))


@st.composite
def mutated_presets(draw) -> dict:
    key = draw(st.sampled_from(sorted(PRESET_DOCS)))
    document = copy.deepcopy(PRESET_DOCS[key])
    for _ in range(draw(st.integers(1, 3))):
        places = [(p, c) for p, c in _containers(document) if c]
        _, target = draw(st.sampled_from(places))
        slot = draw(st.sampled_from(sorted(target, key=str) if isinstance(target, dict) else range(len(target))))
        action = draw(st.sampled_from(["delete", "replace", "replace", "rename_type", "add_key"]))
        if action == "delete":
            del target[slot]
        elif action == "replace":
            target[slot] = draw(JSON_VALUES)
        elif action == "add_key" and isinstance(target, dict):
            target[draw(st.text(min_size=1, max_size=6))] = draw(JSON_VALUES)
        elif action == "rename_type":
            layers = [c for _, c in _containers(document) if isinstance(c, dict) and "type" in c]
            if layers:
                layer = draw(st.sampled_from(layers))
                layer["type"] = draw(st.one_of(st.sampled_from(sorted(REGISTRY)), st.text(max_size=8)))
    return document


@SETTINGS
@given(document=mutated_presets())
def test_mutated_presets_build_or_explain(document):
    assume(document is not None)
    _check(document, max_params=300_000)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(document=JSON_VALUES)
def test_arbitrary_json_is_refused_cleanly(document):
    try:
        preset = preset_from_dict(document)
    except SpecError:
        return
    validate(preset)
