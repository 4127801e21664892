"""workbench.losses: Keras's clipped binary cross-entropy and the class a classifier's output picks."""
from __future__ import annotations

import math

import pytest
import torch

from workbench.losses import BCE_LOGIT_BOUND, KERAS_EPSILON, binary_cross_entropy, predicted_class


def test_bce_is_the_binary_cross_entropy_of_the_sigmoid_inside_the_clip():
    z = torch.tensor([-9.0, -2.5, -0.3, 0.0, 0.7, 3.0, 12.0], dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 0, 1, 1])
    p = torch.sigmoid(z)
    expected = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
    torch.testing.assert_close(binary_cross_entropy(z[:, None], y, reduction="none").double(), expected,
                               atol=1e-6, rtol=1e-5)
    assert float(binary_cross_entropy(z[:, None], y)) == pytest.approx(float(expected.mean()), rel=1e-5)


def test_bce_clips_sigma_to_keras_epsilon_and_passes_no_gradient_beyond():
    # keras/backend/tensorflow_backend.py (2.1.2) binary_crossentropy: clip(σ, ε, 1 − ε), ε = 1e-7
    assert BCE_LOGIT_BOUND == pytest.approx(math.log((1 - 1e-7) / 1e-7)) and KERAS_EPSILON == 1e-7
    z = torch.tensor([[25.0], [25.0], [-40.0], [-40.0], [3.0]], requires_grad=True)
    y = torch.tensor([1, 0, 0, 1, 1])
    loss = binary_cross_entropy(z, y, reduction="none")
    assert loss[0].item() == pytest.approx(-math.log(1 - 1e-7), rel=1e-2)  # right and sure: −ln(1 − ε)
    assert loss[1].item() == pytest.approx(-math.log(1e-7), rel=1e-5)      # wrong and sure: −ln ε, not 25
    assert loss[3].item() == pytest.approx(-math.log(1e-7), rel=1e-5)
    loss.sum().backward()
    assert z.grad[:4].abs().max().item() == 0.0                            # clipped: no gradient at all
    assert z.grad[4].item() == pytest.approx(torch.sigmoid(torch.tensor(3.0)).item() - 1, rel=1e-5)


def test_predicted_class_of_one_logit_and_of_several_outputs():
    one = torch.tensor([[-1.0], [0.0], [1e-6], [4.0]])
    assert predicted_class(one).tolist() == [0, 0, 1, 1]   # σ(z) > ½ (Keras rounds σ; σ(0) = ½ → 0)
    many = torch.tensor([[0.1, 0.9, 0.0], [2.0, -1.0, 1.0]])
    assert predicted_class(many).tolist() == [1, 0]


def _keras_binary_crossentropy(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Keras 2.1.2 by hand, in float64: Dense(1, activation='sigmoid') gives p = σ(z); then
    keras/backend/tensorflow_backend.py ``binary_crossentropy(target, output)``:
    p ← clip(p, ε, 1 − ε), l ← log(p / (1 − p)), tf.nn.sigmoid_cross_entropy_with_logits(y, l)
    = max(l, 0) − l·y + log(1 + exp(−|l|)), written with TensorFlow's two ``where``s (so the
    gradient at l = 0 is TF's σ(0) − y); ``losses.binary_crossentropy`` means it over the last axis."""
    p = torch.sigmoid(z).clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
    logit = torch.log(p / (1 - p))
    nonnegative = logit >= 0
    relu_logits = torch.where(nonnegative, logit, torch.zeros_like(logit))
    neg_abs_logits = torch.where(nonnegative, -logit, logit)
    return relu_logits - logit * y + torch.log1p(torch.exp(neg_abs_logits))


def test_bce_and_its_gradient_equal_keras_formula_in_float64_including_saturated_logits():
    # inside the clip, at its edge (|z| ≈ 16.118) and saturated far beyond, both labels
    z = torch.tensor([-60.0, -25.0, -16.5, -16.0, -4.0, -0.5, 0.0, 0.5, 4.0, 16.0, 16.5, 25.0, 60.0] * 2,
                     dtype=torch.float64)
    y = torch.tensor([0.0] * 13 + [1.0] * 13, dtype=torch.float64)
    z_keras = z.clone().requires_grad_(True)
    keras = _keras_binary_crossentropy(z_keras, y)
    keras.mean().backward()
    z_ours = z.clone()[:, None].requires_grad_(True)
    ours = binary_cross_entropy(z_ours, y.long(), reduction="none")
    torch.testing.assert_close(ours.double(), keras.detach(), rtol=1e-5, atol=1e-6)
    binary_cross_entropy(z_ours, y.long()).backward()
    torch.testing.assert_close(z_ours.grad[:, 0].double(), z_keras.grad, rtol=1e-5, atol=1e-9)
    saturated = z.abs() > BCE_LOGIT_BOUND
    assert int(saturated.sum()) == 12 and torch.all(z_keras.grad[saturated] == 0)  # Keras: no gradient there
    assert torch.all(z_ours.grad[saturated, 0] == 0)
    # a sure mistake costs −ln ε ≈ 16.12 however large |z| is (an unclipped BCE would say |z|)
    wrong = saturated & ((z > 0) != (y > 0))
    assert torch.allclose(ours[wrong].double(), torch.full_like(z[wrong], -math.log(KERAS_EPSILON)), rtol=1e-5)
