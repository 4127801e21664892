"""Loss pieces the trainer and ``afwb eval`` share: Keras's binary cross-entropy and the predicted class.

``binary_cross_entropy`` is ``task.loss: "bce"``: one output per sample, a logit z; p = σ(z) is the
probability of class 1. Keras 2's ``binary_crossentropy`` (keras/backend/tensorflow_backend.py,
2.1.2) clips p to [ε, 1 − ε] with ε = ``K.epsilon()`` = 1e-7 before taking logs, so a sample
classified with |z| > ln((1 − ε)/ε) ≈ 16.12 contributes a constant loss and no gradient. That is
part of what the Going-Deeper parity experiment trained with (kutoga/going_deeper
``experiment_00_xor.py``, ``Dense(1, activation='sigmoid')`` + ``loss='binary_crossentropy'``), so
it is computed the same way here: clamp z to ±16.12 (the clamp passes no gradient beyond), then
−[y ln σ(z) + (1 − y) ln(1 − σ(z))], averaged over the batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["KERAS_EPSILON", "BCE_LOGIT_BOUND", "binary_cross_entropy", "predicted_class"]

#: Keras's fuzz factor ``K.epsilon()`` (its default, keras.json "epsilon": 1e-07)
KERAS_EPSILON = 1e-7
#: |logit| where σ reaches ε or 1 − ε: ln((1 − ε)/ε) ≈ 16.118
BCE_LOGIT_BOUND = math.log((1.0 - KERAS_EPSILON) / KERAS_EPSILON)


def binary_cross_entropy(out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Keras's clipped binary cross-entropy of logits ``out`` (N, 1) against labels ``y`` (N,) in {0, 1}."""
    z = out.float().reshape(y.shape).clamp(-BCE_LOGIT_BOUND, BCE_LOGIT_BOUND)
    return F.binary_cross_entropy_with_logits(z, y.float(), reduction=reduction)


def predicted_class(out: torch.Tensor) -> torch.Tensor:
    """The class a classifier's output picks: the argmax over its outputs, or for a single output
    (a logit under ``bce``) class 1 where z > 0 (σ(z) > ½; Keras's binary accuracy rounds σ)."""
    if out.shape[-1] == 1:
        return (out[..., 0] > 0).long()
    return out.argmax(-1)
