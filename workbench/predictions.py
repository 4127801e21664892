"""What a trained model predicts: the forward pass as the trainer validates, and class probabilities.

Shared by :mod:`workbench.evaluation` (a run's checkpoint over its validation set) and
:mod:`workbench.boundary` (the model over a grid of the input plane, live during training), so the
two always agree with each other and with the trainer's own validation figures.
"""
from __future__ import annotations

from typing import Any

import torch

from .losses import BCE_LOGIT_BOUND  # one definition (Keras's clip), re-exported

__all__ = ["loss_kind", "forward", "class_scores", "class_probabilities", "target_offset", "BCE_LOGIT_BOUND"]


def loss_kind(task_spec: Any, data_task: str) -> str:
    """The trainer's loss for ``task_spec.loss`` on a ``data_task`` ("classification"/"regression") set:
    ``cross_entropy``, ``mse_onehot`` (MSE against one-hot targets), ``bce`` (binary cross-entropy of
    one logit, two classes) or ``mse`` (regression)."""
    if data_task == "regression":
        return "mse"
    loss = str(getattr(task_spec, "loss", "auto"))
    if loss == "bce":
        return "bce"
    return "mse_onehot" if loss == "mse" else "cross_entropy"


def forward(model: torch.nn.Module, x: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """``model(x)`` in float32, under bf16 autocast when the run trained in bf16 (as the trainer's
    validation does)."""
    if precision == "bf16":
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
            return model(x).float()
    return model(x).float()


def class_scores(out: torch.Tensor) -> torch.Tensor:
    """A classifier's outputs as (N, K ≥ 2) float scores whose argmax is its prediction.

    A single output per sample is one logit z of two classes (``task.loss`` "bce": p(class 1) =
    σ(z)); it becomes the two columns (0, z): the argmax is class 1 exactly where z > 0 (σ(z) > ½),
    and their softmax is (1 − σ(z), σ(z)). Wider outputs are returned as they are (in float32)."""
    out = out.float()
    if out.shape[-1] == 1:
        return torch.cat([torch.zeros_like(out), out], dim=-1)
    return out


def class_probabilities(out: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-class probabilities (rows sum to 1) from a classifier's outputs ``out`` (N, K), or (N, 1)
    for one logit z of two classes: (1 − σ(z), σ(z)) (:func:`class_scores`).

    * cross-entropy (and ``bce``): ``softmax(out)``, the distribution the loss fits;
    * MSE on one-hot targets (``mse_onehot``, HanNet's checkerboard): each output estimates its
      class indicator, so the probabilities are the outputs clipped at 0 and divided by their sum
      (uniform when every output is ≤ 0). Softmax would squeeze such outputs (≈ 0 and ≈ 1) into
      0.27 / 0.73 for two classes and hide how sure the model is.

    The argmax is the trainer's prediction ``out.argmax(-1)`` in both cases (ties aside)."""
    out = class_scores(out)
    if kind == "mse_onehot":
        clipped = out.clamp_min(0.0)
        total = clipped.sum(-1, keepdim=True)
        uniform = torch.full_like(clipped, 1.0 / max(1, out.shape[-1]))
        return torch.where(total > 0, clipped / total.clamp_min(1e-30), uniform)
    return torch.softmax(out, dim=-1)


def target_offset(notes: Any, targets: int) -> list[float]:
    """The regression targets' means (target units) that the data set subtracted before scaling
    (``LoadedData.notes["target_mean"]``, one number or one per target; 0 when not recorded)."""
    mean = (notes or {}).get("target_mean", 0.0) if isinstance(notes, dict) else 0.0
    if isinstance(mean, (list, tuple)):
        values = [float(m) for m in mean]
        return (values + [0.0] * targets)[:targets]
    return [float(mean)] * targets
