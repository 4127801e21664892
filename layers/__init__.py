"""The palette: activation-free layer families as plain PyTorch modules (imports torch only).

- Z layers (``layers.z``): ``softmean``, ``ZLinear``, ``ZConv2d``, ``SoftPool2d``
- Han layers (``layers.han``): ``HouseholderLinear``, ``HanLayer``, ``HanStack``
- Π-Nets (``layers.pinet``): ``ProductConv2d``, ``PiBlock2d``, ``CCPPolynomial``
- Twist (``layers.twist``): ``TwistConv2d``, ``TwistBasicBlock``
- Infinite depth (``layers.depth``): ``DepthGate``, ``InfiniteDepth``
- Initialisation schemes of the seed recipes (``layers.init``): ``init_weight_``, ``init_vector_``

Constructor keywords match the preset JSON keys; impossible settings raise ``ValueError`` naming
the argument, and forward-time shape mismatches raise ``ValueError`` naming the layer and shapes.
"""
from .depth import DepthGate, InfiniteDepth
from .han import HanLayer, HanStack, HouseholderLinear
from .pinet import CCPPolynomial, PiBlock2d, ProductConv2d
from .twist import TwistBasicBlock, TwistConv2d
from .z import SoftPool2d, ZConv2d, ZLinear, softmean

__all__ = [
    "softmean",
    "ZLinear",
    "ZConv2d",
    "SoftPool2d",
    "HouseholderLinear",
    "HanLayer",
    "HanStack",
    "ProductConv2d",
    "PiBlock2d",
    "CCPPolynomial",
    "TwistConv2d",
    "TwistBasicBlock",
    "DepthGate",
    "InfiniteDepth",
]
