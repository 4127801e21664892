"""layers.init: the initialisation schemes of the seed recipes, and the layers that offer them."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from layers import HanLayer, HanStack, HouseholderLinear, PiBlock2d, TwistBasicBlock, TwistConv2d
from layers.init import CONV_INITS, HOUSEHOLDER_INITS, INIT_SCHEMES, LINEAR_INITS, init_vector_, init_weight_


def _std(t: torch.Tensor) -> float:
    return float(t.detach().double().std())


def test_orthogonal_weights_have_orthonormal_rows_and_keep_pytorchs_bias():
    # HanNet (checkerboard_experiments/ann.py, initialize): orthogonal_ on every nn.Linear weight only
    torch.manual_seed(0)
    m = init_weight_(nn.Linear(30, 30), "orthogonal")
    torch.testing.assert_close(m.weight @ m.weight.T, torch.eye(30), atol=1e-5, rtol=0)
    bound = 1 / math.sqrt(30)
    assert float(m.bias.detach().abs().max()) <= bound and float(m.bias.detach().abs().max()) > 0.5 * bound


def test_kaiming_normal_is_fcnets_n0_2_over_fan_in_with_pytorchs_bias():
    # nn.init.kaiming_normal_ defaults (a=0, fan_in, leaky_relu): std √(2/fan_in); HanNet's Net leaves the bias
    torch.manual_seed(0)
    m = init_weight_(nn.Linear(400, 400), "kaiming_normal")
    assert _std(m.weight) == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert float(m.bias.detach().abs().max()) <= 1 / math.sqrt(400) and float(m.bias.detach().abs().max()) > 0


def test_pinet_schemes_zero_the_bias():
    # mmcv KaimingInit(mode=fan_out, nonlinearity=relu, bias=0) and NormalInit(std=0.01, bias=0)
    torch.manual_seed(0)
    conv = init_weight_(nn.Conv2d(64, 128, 3, bias=True), "kaiming_normal_fan_out")
    assert _std(conv.weight) == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.02)
    assert torch.count_nonzero(conv.bias) == 0
    head = init_weight_(nn.Linear(512, 100), "normal_0.01")
    assert _std(head.weight) == pytest.approx(0.01, rel=0.03) and torch.count_nonzero(head.bias) == 0


def test_glorot_uniform_is_keras_dense_default_with_zero_bias():
    # Keras 2.1.2 Dense: kernel_initializer='glorot_uniform' = VarianceScaling(1, fan_avg, uniform):
    # U(±√(6/(fan_in + fan_out))), bias_initializer='zeros' (Going Deeper's every Dense layer)
    torch.manual_seed(0)
    m = init_weight_(nn.Linear(300, 500), "glorot_uniform")
    limit = math.sqrt(6 / (300 + 500))
    assert float(m.weight.detach().abs().max()) <= limit
    assert _std(m.weight) == pytest.approx(limit / math.sqrt(3), rel=0.02)  # uniform: std = limit/√3
    assert torch.count_nonzero(m.bias) == 0
    from workbench.registry import get_entry
    assert "glorot_uniform" in get_entry("Linear").param("init").choices


def test_default_changes_nothing_and_unknown_names_are_refused():
    torch.manual_seed(0)
    a = nn.Linear(5, 3)
    torch.manual_seed(0)
    b = init_weight_(nn.Linear(5, 3), "default")
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    with pytest.raises(ValueError, match="init must be one of"):
        init_weight_(nn.Linear(2, 2), "he")
    assert set(LINEAR_INITS) | set(CONV_INITS) <= set(INIT_SCHEMES)


def test_registry_offers_exactly_the_layer_tables():
    from workbench.registry import get_entry

    assert get_entry("Linear").param("init").choices == LINEAR_INITS
    assert get_entry("Conv2d").param("init").choices == CONV_INITS
    assert get_entry("PiBlock2d").param("conv_init").choices == CONV_INITS
    for name in ("HouseholderLinear", "HanLayer", "HanStack"):
        spec = get_entry(name).param("init")
        assert spec.choices == HOUSEHOLDER_INITS and spec.default == "orthogonal"
    assert get_entry("Linear").param("init").default == "default"


@pytest.mark.parametrize("cls", [HouseholderLinear, HanLayer])
def test_householder_vector_schemes(cls):
    torch.manual_seed(0)
    assert float(cls(30).u.detach().norm()) == pytest.approx(1.0, abs=1e-6)  # orthogonal: a unit vector
    kaiming = torch.stack([cls(30, init="kaiming_normal").u for _ in range(50)])
    assert _std(kaiming) == pytest.approx(math.sqrt(2.0), rel=0.05)  # fan_in of a d×1 matrix is 1
    xavier = torch.stack([cls(30, init="xavier_normal").u for _ in range(50)])
    assert _std(xavier) == pytest.approx(math.sqrt(2 / 31), rel=0.05)
    with pytest.raises(ValueError, match="init"):
        cls(30, init="default")
    u = torch.empty(7)
    init_vector_(u, "orthogonal")
    assert float(u.norm()) == pytest.approx(1.0, abs=1e-6)


def test_han_stack_passes_its_init_to_every_layer():
    stack = HanStack(8, 3, init="xavier_normal")
    assert [layer.init for layer in stack.layers] == ["xavier_normal"] * 3
    with pytest.raises(ValueError, match="HanStack: init"):
        HanStack(8, 3, init="zero")


# --------------------------------------------------------------------------------------- twist init
def test_random_twist_init_is_pytorchs_conv_init_projected_to_the_odd_part():
    torch.manual_seed(0)
    m = TwistConv2d(16, 32, twist_init="random")
    v = m.twist_weight
    assert torch.equal(v, -v.flip(-2, -1))  # already odd: the forward's projection leaves it unchanged
    kx, _ = m.twist_kernels()
    assert torch.equal(kx, v)
    # kaiming_uniform_(a=√5) is U(±1/√fan_in), fan_in = 16·9; its odd part has std bound/√3/√2 off-centre
    bound = 1 / math.sqrt(16 * 9)
    off_centre = torch.cat([v[..., 0, :].flatten(), v[..., 1, 0].flatten()])
    assert _std(off_centre) == pytest.approx(bound / math.sqrt(3) / math.sqrt(2), rel=0.05)
    assert TwistConv2d(2, 2).twist_init == "zero" and torch.count_nonzero(TwistConv2d(2, 2).twist_weight) == 0
    with pytest.raises(ValueError, match="twist_init"):
        TwistConv2d(2, 2, twist_init="normal")


def test_twist_block_passes_twist_init_and_normalises_its_projection_shortcut():
    # 410b9bb BasicBlock: shortcut = nn.Sequential(Conv2d(1×1, stride, bias=False), BatchNorm2d)
    block = TwistBasicBlock(4, 8, stride=2, twist_init="random")
    assert block.conv1.twist_init == block.conv2.twist_init == "random"
    assert torch.count_nonzero(block.conv1.twist_weight) > 0
    assert [type(m) for m in block.shortcut] == [nn.Conv2d, nn.BatchNorm2d]
    conv, bn = block.shortcut
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2) and conv.bias is None
    block.eval()
    x = torch.randn(2, 4, 8, 8)
    a = torch.relu(block.bn1(x))
    torch.testing.assert_close(block.shortcut(a), bn(conv(a)))
    assert isinstance(TwistBasicBlock(4, 4).shortcut, nn.Identity)


# --------------------------------------------------------------------------------------- PiBlock2d init
def test_pi_block_zero_init_residual_starts_every_block_as_its_shortcut():
    # the official log (logs/pinet_norelu.log): bn2.weight "Initialized by user-defined init_weights"
    # (zero_init_residual), convs KaimingInit fan_out; so t = 0, t ⊙ s = 0 and y = s at the start
    torch.manual_seed(0)
    block = PiBlock2d(8, 8, zero_init_residual=True, conv_init="kaiming_normal_fan_out")
    assert torch.count_nonzero(block.bn2.weight) == 0 and torch.equal(block.bn3.weight, torch.ones(8))
    x = torch.randn(4, 8, 6, 6)
    block.bn3.bias.data.zero_()
    torch.testing.assert_close(block(x), x)
    down = PiBlock2d(8, 16, stride=2, zero_init_residual=True).eval()
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(down(x), down.shortcut(x) + down.bn3(torch.zeros(2, 16, 3, 3)))
    wide = PiBlock2d(64, 128, stride=2, product_conv1x1=True, conv_init="kaiming_normal_fan_out")
    for conv in (wide.conv1, wide.conv2, wide.shortcut[0], wide.conv3):
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        assert _std(conv.weight) == pytest.approx(math.sqrt(2 / fan_out), rel=0.1)


def test_pi_block_defaults_are_pytorchs():
    torch.manual_seed(0)
    block = PiBlock2d(8, 8)
    assert torch.equal(block.bn2.weight, torch.ones(8)) and torch.equal(block.bn3.weight, torch.ones(8))
    assert (block.zero_init_residual, block.conv_init) == (False, "default")
