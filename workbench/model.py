"""The torch module a preset builds into (imported by ``workbench.spec.build_model`` on first use,
so that the spec and the editor stay free of torch until a model is built)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn


class SpecModel(nn.Sequential):
    """The model built from a preset: top-level children named ``"0_ZConv2d"``, ``"1_SoftPool2d"``, …

    ``layer_types`` lists each child's registry type; ``input_shape`` is one sample's shape."""

    def __init__(self, named: list[tuple[str, nn.Module]], layer_types: list[str],
                 input_shape: tuple[int, ...]) -> None:
        super().__init__(OrderedDict(named))
        self.layer_types = list(layer_types)
        self.input_shape = tuple(input_shape)
