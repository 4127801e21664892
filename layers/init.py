"""Weight-initialisation schemes of the seed recipes, in one place (imports torch only).

Each scheme is named after what it does and where it comes from; the registry offers a subset per
layer type (``LINEAR_INITS``, ``CONV_INITS``, ``HOUSEHOLDER_INITS``) and calls :func:`init_weight_`
or :func:`init_vector_` from its build functions, so a preset's ``"init"`` means the same thing
everywhere.

=========================  ===============================================  ==============  =================================
scheme                     weight                                           bias            used by (original code)
=========================  ===============================================  ==============  =================================
``default``                left as the module's own constructor set it       left as is      PyTorch's defaults
``orthogonal``             ``nn.init.orthogonal_`` (gain 1)                 left as is      HanNet ``--initial orth``
``kaiming_normal``         ``nn.init.kaiming_normal_`` with its defaults:   left as is      HanNet's FCNet ``--initial
                           N(0, 2/fan_in) (a = 0, fan_in, leaky_relu gain                   kaiming``
                           √2)
``xavier_normal``          ``nn.init.xavier_normal_``: N(0, 2/(fan_in +     left as is      HanNet ``--initial xavier``
                           fan_out))
``kaiming_normal_fan_out`` N(0, 2/fan_out), ``mode="fan_out",               0               Π-Net (mmcv ``KaimingInit``)
                           nonlinearity="relu"``
``normal_0.01``            N(0, 0.01²)                                      0               Π-Net head (mmcv ``NormalInit``)
``glorot_uniform``         ``nn.init.xavier_uniform_``: U(±√(6/(fan_in +     0               Going Deeper (Keras ``Dense``
                           fan_out)))                                                       defaults)
=========================  ===============================================  ==============  =================================

Sources: github.com/yyy32/HanNet ``checkerboard_experiments/ann.py`` (``HouseholderNet.initialize``
and ``Net.initialize`` re-initialise only ``nn.Linear.weight`` and the Householder ``vector``;
biases keep PyTorch's U(−1/√fan_in, 1/√fan_in); commit 09f8dc0, unchanged since 7507e20);
github.com/grigorisg9gr/polynomial_nets ``classification-NO-activation-function/logs/pinet_norelu.log``
(commit 210f0d3: "KaimingInit: a=0, mode=fan_out, nonlinearity=relu, distribution=normal, bias=0"
for every conv, "NormalInit: mean=0, std=0.01, bias=0" for the head); Keras 2.1.2 ``keras/layers/core.py``
``Dense(kernel_initializer='glorot_uniform', bias_initializer='zeros')``, the defaults of every Dense
layer in github.com/kutoga/going_deeper (commit e4d72d8; Keras's kernel is (fan_in, fan_out), PyTorch's
weight its transpose: the same limit).
"""  # noqa: E501 - the table's rows are wider than a line
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ._checks import check_choice

__all__ = ["INIT_SCHEMES", "LINEAR_INITS", "CONV_INITS", "HOUSEHOLDER_INITS", "init_weight_", "init_vector_"]


def _keep(weight: torch.Tensor) -> bool:
    return False  # untouched; the bias is untouched too


def _orthogonal(weight: torch.Tensor) -> bool:
    nn.init.orthogonal_(weight)
    return False


def _kaiming_normal(weight: torch.Tensor) -> bool:
    nn.init.kaiming_normal_(weight)
    return False


def _xavier_normal(weight: torch.Tensor) -> bool:
    nn.init.xavier_normal_(weight)
    return False


def _kaiming_normal_fan_out(weight: torch.Tensor) -> bool:
    nn.init.kaiming_normal_(weight, a=0.0, mode="fan_out", nonlinearity="relu")
    return True


def _normal_001(weight: torch.Tensor) -> bool:
    nn.init.normal_(weight, mean=0.0, std=0.01)
    return True


def _glorot_uniform(weight: torch.Tensor) -> bool:
    nn.init.xavier_uniform_(weight)
    return True


# scheme -> function(weight) that initialises the weight in place and returns True if the bias is zeroed
INIT_SCHEMES: dict[str, Callable[[torch.Tensor], bool]] = {
    "default": _keep,
    "orthogonal": _orthogonal,
    "kaiming_normal": _kaiming_normal,
    "xavier_normal": _xavier_normal,
    "kaiming_normal_fan_out": _kaiming_normal_fan_out,
    "normal_0.01": _normal_001,
    "glorot_uniform": _glorot_uniform,
}

LINEAR_INITS = ("default", "orthogonal", "kaiming_normal", "xavier_normal", "normal_0.01", "glorot_uniform")
CONV_INITS = ("default", "kaiming_normal", "kaiming_normal_fan_out", "orthogonal")
HOUSEHOLDER_INITS = ("orthogonal", "kaiming_normal", "xavier_normal")


def _scheme(owner: str, scheme: object, allowed: tuple[str, ...]) -> Callable[[torch.Tensor], bool]:
    return INIT_SCHEMES[check_choice(owner, "init", scheme, allowed)]


@torch.no_grad()
def init_weight_(module: nn.Module, scheme: str) -> nn.Module:
    """Initialise ``module.weight`` (and possibly zero ``module.bias``) by ``scheme``; returns the module.

    Works for any module with a ``weight`` of ≥ 2 dimensions (``nn.Linear``, ``nn.Conv2d``); the
    schemes are in the module docstring's table.
    """
    owner = type(module).__name__
    zero_bias = _scheme(owner, scheme, tuple(INIT_SCHEMES))(module.weight)
    bias = getattr(module, "bias", None)
    if zero_bias and bias is not None:
        nn.init.zeros_(bias)
    return module


@torch.no_grad()
def init_vector_(vector: torch.Tensor, scheme: str, owner: str = "HouseholderLinear") -> torch.Tensor:
    """Initialise a Householder vector u ∈ R^d in place as the d×1 matrix the original initialises.

    ``orthogonal``: a random unit vector (``orthogonal_`` of a d×1 matrix); ``kaiming_normal``:
    N(0, 2) entries (fan_in of a d×1 matrix is 1); ``xavier_normal``: N(0, 2/(d + 1)). Only the
    direction of u matters for the reflection H(u); the scale changes the gradient's size.
    """
    column = torch.empty(vector.numel(), 1, dtype=vector.dtype, device=vector.device)
    _scheme(owner, scheme, HOUSEHOLDER_INITS)(column)
    vector.copy_(column.view_as(vector))
    return vector
