"""Evaluation of a run: what its trained model does on the validation set (no Qt: the command line's
``eval`` and the app's Evaluate page both use this module).

:func:`evaluate_run` loads a run's checkpoint (``best``, else ``last``), rebuilds its data exactly as
the trainer did (same preset, same seed: the same validation split) and runs the model over the
validation set (the training set when the preset has none) in batches, as the trainer's own
validation does. It returns an :class:`Evaluation`:

* classification — the confusion matrix ``C[t, p]`` (samples of true class t predicted as p), per
  class precision = C[k,k] / Σ_t C[t,k], recall = C[k,k] / Σ_p C[k,p], F1 = 2·P·R / (P + R) and
  support = Σ_p C[k,p] (0 where a denominator is 0, as scikit-learn's ``zero_division=0``), the
  accuracy = trace(C) / N and the macro-F1 (mean F1 over all K classes of the data set); every
  prediction (index, true, predicted, confidence = the predicted class's probability, see
  :func:`workbench.predictions.class_probabilities`); the misclassified samples sorted by
  confidence (most confident first) with their top-5 classes and probabilities, and for image data
  the first :data:`GALLERY_IMAGES` of them as 8-bit pictures;
* regression — predictions and targets in target units, RMSE = √(mean (ŷ − y)²), MAE =
  mean |ŷ − y| (over every sample and target) and R² = 1 − Σ(ŷ − y)² / Σ(y − ȳ)² (per target,
  then averaged as scikit-learn's ``r2_score``);
* two input features — the decision boundary over the data's plane (:mod:`workbench.boundary`)
  and the points to draw on it.

The result is cached in the run folder as ``evaluation/<checkpoint>.npz`` (written atomically,
never through a symbolic link; :func:`load_cached`), keyed on the checkpoint file's identity (size,
modification time in ns, inode) and :data:`EVALUATION_FORMAT`: a run resumed or retrained since
writes a new checkpoint file, so its old figures are never served. The file is read with
``allow_pickle=False``.
"""
from __future__ import annotations

import io
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["Evaluation", "CheckpointRef", "EvaluationError", "EvaluationCancelled", "evaluate_run",
           "load_run_model", "load_cached", "save_cache", "cache_path", "checkpoint_ref", "class_names_for",
           "classification_figures", "regression_figures", "EVALUATION_FORMAT", "GALLERY_IMAGES", "TOP_K",
           "EVAL_BATCH", "Progress"]

EVALUATION_FORMAT = "afwb.evaluation/1"
#: Misclassified samples kept with their picture (image data), most confident first.
GALLERY_IMAGES = 120
#: Classes listed with their probability for each misclassified sample.
TOP_K = 5
#: Samples per forward pass while evaluating.
EVAL_BATCH = 1024
#: Sub-folder of a run folder that holds the cached evaluations.
EVALUATION_DIR = "evaluation"

#: ``progress(stage, done, total)``: ``stage`` is a short text ("loading data", "evaluating"); may
#: raise :class:`EvaluationCancelled` to stop.
Progress = Callable[[str, int, int], None]


class EvaluationError(Exception):
    """A run cannot be evaluated: ``message`` says why, ``hint`` what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class EvaluationCancelled(Exception):
    """Raised by a progress callback to stop an evaluation (nothing is cached)."""


@dataclass(frozen=True)
class CheckpointRef:
    """The checkpoint evaluated: ``which`` was asked for, ``file`` is the file read (``best.pt``
    falls back to ``last.pt``), ``epoch`` epochs completed and optimiser ``step`` when saved,
    ``key`` the file's identity (size:mtime_ns:inode)."""

    which: str
    file: str
    epoch: int
    step: int
    key: str


@dataclass
class Evaluation:
    """The figures of one run's checkpoint on one split (see the module docstring for the math).

    ``indices`` are positions in the evaluated split (``split``: "validation" or "training");
    ``true``/``predicted`` are class indices (classification) or (N, targets) values in target
    units (regression). Classification arrays: ``confusion`` (K, K) int64, rows = true class;
    ``precision``/``recall``/``f1`` (K,) float64; ``support`` (K,) int64; ``confidence`` (N,).
    Mistakes: ``mistake_index`` (M,) positions in the split sorted by confidence (descending),
    ``mistake_topk`` / ``mistake_topp`` (M, min(K, TOP_K)) classes and probabilities, ``mistake_images``
    (G, H, W, C) uint8 pictures of the first G mistakes (image data only)."""

    run_name: str
    dataset: str
    task: str
    split: str
    checkpoint: CheckpointRef
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    loss: float
    true: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray | None = None
    confusion: np.ndarray | None = None
    precision: np.ndarray | None = None
    recall: np.ndarray | None = None
    f1: np.ndarray | None = None
    support: np.ndarray | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    mistake_index: np.ndarray | None = None
    mistake_topk: np.ndarray | None = None
    mistake_topp: np.ndarray | None = None
    mistake_images: np.ndarray | None = None
    rmse: float | None = None
    mae: float | None = None
    r2: float | None = None
    boundary: Any = None        # workbench.boundary.DecisionBoundary (two input features)
    points: Any = None          # workbench.boundary.BoundaryPoints
    notes: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ derived
    @property
    def n(self) -> int:
        return int(self.true.shape[0])

    @property
    def image(self) -> bool:
        return len(self.input_shape) == 3

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def residuals(self) -> np.ndarray:
        """Regression: predicted − true, (N, targets), target units."""
        return np.asarray(self.predicted, dtype=np.float64) - np.asarray(self.true, dtype=np.float64)

    @property
    def mistake_true(self) -> np.ndarray:
        return self.true[self.mistake_index] if self.mistake_index is not None else np.zeros(0, np.int64)

    @property
    def mistake_predicted(self) -> np.ndarray:
        return self.predicted[self.mistake_index] if self.mistake_index is not None else np.zeros(0, np.int64)

    @property
    def mistake_confidence(self) -> np.ndarray:
        if self.mistake_index is None or self.confidence is None:
            return np.zeros(0)
        return self.confidence[self.mistake_index]

    def normalized_confusion(self) -> np.ndarray:
        """Each row of the confusion matrix divided by its total (the true class's recall on the
        diagonal); rows of classes with no sample are 0."""
        c = np.asarray(self.confusion, dtype=np.float64)
        rows = c.sum(axis=1, keepdims=True)
        return np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)

    def summary(self) -> dict[str, Any]:
        """The headline figures as JSON-ready values (``eval --json``)."""
        out: dict[str, Any] = {
            "run": self.run_name, "dataset": self.dataset, "task": self.task, "split": self.split,
            "samples": self.n, "checkpoint": self.checkpoint.which, "checkpoint_file": self.checkpoint.file,
            "epoch": self.checkpoint.epoch, "step": self.checkpoint.step, "loss": _finite(self.loss),
        }
        if self.task == "classification":
            out["accuracy"] = _finite(self.accuracy)
            out["macro_f1"] = _finite(self.macro_f1)
            out["misclassified"] = int(self.mistake_index.shape[0]) if self.mistake_index is not None else 0
            out["per_class"] = [
                {"class": name, "precision": _finite(self.precision[k]), "recall": _finite(self.recall[k]),
                 "f1": _finite(self.f1[k]), "support": int(self.support[k])}
                for k, name in enumerate(self.class_names)]
        else:
            out.update(rmse=_finite(self.rmse), mae=_finite(self.mae), r2=_finite(self.r2))
        return out

    def summary_line(self) -> str:
        """One line: the split, the checkpoint and the headline figures."""
        where = f"{self.split} set: {self.n} samples"
        ck = f"{self.checkpoint.file}, epoch {self.checkpoint.epoch}, step {self.checkpoint.step}"
        if self.task == "classification":
            wrong = int(self.mistake_index.shape[0]) if self.mistake_index is not None else 0
            figures = (f"accuracy {100 * self.accuracy:.2f}%, macro-F1 {self.macro_f1:.4f}, "
                       f"{wrong} misclassified")
        else:
            figures = f"RMSE {self.rmse:.4g}, MAE {self.mae:.4g}, R² {self.r2:.4f} (target units)"
        return f"{self.run_name} [{ck}]: {where}, loss {self.loss:.4g}, {figures}"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


# ---------------------------------------------------------------------------------------------
# Figures from predictions (pure numpy; what the tests compare with scikit-learn)
# ---------------------------------------------------------------------------------------------
def classification_figures(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Confusion matrix, per-class precision / recall / F1 / support, accuracy and macro-F1 of
    integer labels ``true`` and ``predicted`` over classes 0 … n_classes − 1."""
    true = np.asarray(true, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    k = int(n_classes)
    confusion = np.bincount(true * k + predicted, minlength=k * k).reshape(k, k).astype(np.int64)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    precision = np.divide(tp, predicted_count, out=np.zeros(k), where=predicted_count > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    n = int(true.shape[0])
    return {"confusion": confusion, "precision": precision, "recall": recall, "f1": f1,
            "support": support.astype(np.int64), "accuracy": float(tp.sum() / n) if n else float("nan"),
            "macro_f1": float(f1.mean()) if k else float("nan")}


def regression_figures(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE (over every sample and target) and R² (per target, averaged) of (N, T) arrays."""
    t = np.asarray(true, dtype=np.float64).reshape(len(true), -1)
    p = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    err = p - t
    ss_res = (err ** 2).sum(axis=0)
    ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    # scikit-learn: a constant target scores 1 when predicted exactly, else 0
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res == 0, 1.0, 0.0))
    return {"rmse": float(np.sqrt((err ** 2).mean())), "mae": float(np.abs(err).mean()), "r2": float(r2.mean())}


# ---------------------------------------------------------------------------------------------
# Class names
# ---------------------------------------------------------------------------------------------
def class_names_for(preset: Any, data: Any = None, n_classes: int | None = None) -> tuple[str, ...]:
    """The names of a classification data set's classes: those the loaded data or the data set's
    description carry, else "0", "1", … (``n_classes`` of them, or the data's ``output_dim``)."""
    k = n_classes if n_classes is not None else int(getattr(data, "output_dim", 0) or 0)
    names = tuple(str(n) for n in (getattr(data, "class_names", None) or ()))
    if not names and preset is not None:
        try:
            from .datasets import dataset_info

            info = dataset_info(preset.task.dataset, preset.task.options)
            names = tuple(str(n) for n in (getattr(info, "class_names", None) or ()))
            k = k or int(info.output_dim)
        except Exception:  # noqa: BLE001 - an unknown data set still gets numbered classes
            names = ()
    if names and (not k or len(names) == k):
        return names
    return tuple(str(i) for i in range(k))


# ---------------------------------------------------------------------------------------------
# Loading a run's model
# ---------------------------------------------------------------------------------------------
def _spec_error_text(exc: Exception) -> str:
    problems = getattr(exc, "problems", None)
    if problems:
        return "\n".join(str(p) for p in problems)
    return str(exc)


def load_run_model(run: Path | str, which: str = "best", device: Any = "cpu") -> tuple[Any, Any, dict[str, Any], Path]:
    """(preset, model with the checkpoint's weights in eval mode on ``device``, checkpoint dict,
    checkpoint path) of run folder ``run``; ``best`` falls back to ``last`` when the run never saved
    a best. Raises :class:`EvaluationError` naming the problem."""
    from .runs import checkpoint_path, load_checkpoint
    from .spec import SpecError, build_model, load_preset
    from .trainer import CheckpointMismatch, check_checkpoint

    run = Path(run)
    if which not in ("best", "last"):
        raise EvaluationError(f"unknown checkpoint '{which}'", "use best or last")
    preset_file = run / "preset.json"
    if not preset_file.exists():
        raise EvaluationError(f"{run} holds no preset.json: not a run folder", "pick a run folder")
    try:
        preset = load_preset(preset_file)
        model = build_model(preset)
    except SpecError as exc:
        raise EvaluationError(f"the run's preset cannot be built:\n{_spec_error_text(exc)}",
                              "open the run's preset in the editor to see the problems") from None
    path = checkpoint_path(run, which)
    if not path.exists() and which == "best":
        path = checkpoint_path(run, "last")
    if not path.exists():
        raise EvaluationError(f"{run} has no checkpoint (checkpoints/best.pt or last.pt): it ended before its "
                              "first epoch", "train it for at least one epoch")
    try:
        ckpt = load_checkpoint(path, map_location=device)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file
        raise EvaluationError(f"cannot read {path}: {exc}", "the file is damaged; train the run again") from None
    try:
        check_checkpoint(model, ckpt, path)
    except CheckpointMismatch as exc:
        raise EvaluationError(str(exc), "evaluate it with the preset that wrote the checkpoint") from None
    model.load_state_dict(ckpt["model"])
    model.to(device)
    model.eval()
    return preset, model, ckpt, path


def checkpoint_ref(path: Path, which: str, ckpt: dict[str, Any] | None = None) -> CheckpointRef:
    """The identity of checkpoint file ``path`` (its epoch and step from ``ckpt`` when given)."""
    st = os.stat(path)
    epoch = int((ckpt or {}).get("epoch", 0))
    step = int((ckpt or {}).get("step", 0))
    return CheckpointRef(which=which, file=Path(path).name, epoch=epoch, step=step,
                         key=f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")


def _current_checkpoint(run: Path, which: str) -> Path | None:
    from .runs import checkpoint_path

    path = checkpoint_path(run, which)
    if not path.exists() and which == "best":
        path = checkpoint_path(run, "last")
    return path if path.exists() else None


# ---------------------------------------------------------------------------------------------
# The evaluation
# ---------------------------------------------------------------------------------------------
def _to_uint8_images(x: np.ndarray) -> np.ndarray:
    """(G, C, H, W) float images → (G, H, W, C) uint8, each picture's range stretched to 0 … 255
    (the data are standardised per channel; this shows them as they look, up to contrast)."""
    x = np.asarray(x, dtype=np.float64)
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    hi = x.max(axis=(1, 2, 3), keepdims=True)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    out = np.clip(np.round((x - lo) / span * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1))


def evaluate_model(model: Any, data: Any, preset: Any, checkpoint: CheckpointRef, *, run_name: str = "",
                   progress: Progress | None = None) -> Evaluation:
    """Evaluate ``model`` (eval mode, on ``data.device``) on ``data``'s validation split (its training
    split when it has none); see the module docstring for every figure."""
    import torch
    import torch.nn.functional as F

    from .boundary import boundary_of, boundary_points, is_two_feature
    from .losses import binary_cross_entropy
    from .predictions import class_probabilities, class_scores, forward, loss_kind, target_offset

    task = "regression" if data.task == "regression" else "classification"
    kind = loss_kind(preset.task, data.task)
    precision = str(getattr(preset.train, "precision", "fp32"))
    if data.val_size > 0:
        split, n = "validation", data.val_size
        batches = data.val_batches(EVAL_BATCH)
        raw_x = data.val_x
    else:
        split, n = "training", data.train_size
        batches = ((data.train_x[i:i + EVAL_BATCH], data.train_y[i:i + EVAL_BATCH])
                   for i in range(0, data.train_size, EVAL_BATCH))
        raw_x = data.train_x
    total_batches = max(1, math.ceil(n / EVAL_BATCH))
    loss_sum = torch.zeros((), dtype=torch.float64, device=data.device)
    outs_pred, outs_conf, outs_topk, outs_topp, outs_true, outs_val = [], [], [], [], [], []
    k = max(2, int(data.output_dim)) if task == "classification" else int(data.output_dim)
    top = min(TOP_K, k) if task == "classification" else 0
    with torch.no_grad():
        for b, (x, y) in enumerate(batches):
            if progress is not None:
                progress("evaluating", b, total_batches)
            out = forward(model, x, precision)
            if task == "regression":
                loss_sum += F.mse_loss(out.reshape(y.shape), y, reduction="sum").double() / max(1, y[0].numel())
                outs_val.append(out.reshape(y.shape[0], -1))
                outs_true.append(y.reshape(y.shape[0], -1))
                continue
            if kind == "mse_onehot":
                one_hot = F.one_hot(y, out.shape[-1]).float()
                loss_sum += F.mse_loss(out, one_hot, reduction="sum").double() / out.shape[-1]
            elif kind == "bce" and out.shape[-1] == 1:      # Keras's clipped binary cross-entropy
                loss_sum += binary_cross_entropy(out, y, reduction="sum").double()
            else:
                loss_sum += F.cross_entropy(class_scores(out), y, reduction="sum").double()
            out = class_scores(out)                        # one logit z → (0, z): two classes
            probs = class_probabilities(out, kind)
            order = out.topk(top, dim=-1).indices          # the prediction first: out.argmax(-1)
            outs_pred.append(order[:, 0])
            outs_conf.append(probs.gather(1, order[:, :1])[:, 0])
            outs_topk.append(order)
            outs_topp.append(probs.gather(1, order))
            outs_true.append(y)
    if progress is not None:
        progress("evaluating", total_batches, total_batches)
    loss = float(loss_sum) / max(1, n)
    # classification: one name per class; regression: the targets' names when the data set has them
    names = class_names_for(preset, data, k) if task == "classification" else tuple(
        str(n) for n in (getattr(data, "class_names", None) or ()))
    ev = Evaluation(run_name=run_name, dataset=str(data.name), task=task, split=split, checkpoint=checkpoint,
                    input_shape=tuple(int(d) for d in data.input_shape), class_names=names, loss=loss,
                    true=np.zeros(0), predicted=np.zeros(0))
    if task == "classification":
        true = torch.cat(outs_true).cpu().numpy().astype(np.int64)
        pred = torch.cat(outs_pred).cpu().numpy().astype(np.int64)
        conf = torch.cat(outs_conf).double().cpu().numpy()
        topk = torch.cat(outs_topk).cpu().numpy().astype(np.int64)
        topp = torch.cat(outs_topp).double().cpu().numpy()
        figures = classification_figures(true, pred, k)
        wrong = np.flatnonzero(pred != true)
        order = wrong[np.argsort(-conf[wrong], kind="stable")]     # most confident mistakes first
        ev.true, ev.predicted, ev.confidence = true, pred, conf
        ev.confusion, ev.precision, ev.recall = figures["confusion"], figures["precision"], figures["recall"]
        ev.f1, ev.support = figures["f1"], figures["support"]
        ev.accuracy, ev.macro_f1 = figures["accuracy"], figures["macro_f1"]
        ev.mistake_index, ev.mistake_topk, ev.mistake_topp = order, topk[order], topp[order]
        if len(data.input_shape) == 3 and order.size:
            shown = torch.as_tensor(order[:GALLERY_IMAGES], device=raw_x.device)
            ev.mistake_images = _to_uint8_images(raw_x.index_select(0, shown).float().cpu().numpy())
    else:
        scale = float(data.target_scale)
        t = torch.cat(outs_true).double().cpu().numpy()
        p = torch.cat(outs_val).double().cpu().numpy()
        mean = np.asarray(target_offset(getattr(data, "notes", {}), t.shape[1]))
        ev.true, ev.predicted = t * scale + mean, p * scale + mean
        figures = regression_figures(ev.true, ev.predicted)
        ev.rmse, ev.mae, ev.r2 = figures["rmse"], figures["mae"], figures["r2"]
    if is_two_feature(data.input_shape):
        if progress is not None:
            progress("decision boundary", 0, 1)
        with torch.no_grad():
            ev.boundary = boundary_of(model, data, preset, step=checkpoint.step, epoch=checkpoint.epoch,
                                      source=checkpoint.which)
        ev.points = boundary_points(data)
    return ev


def evaluate_run(run: Path | str, which: str = "best", *, device: Any = "cpu", data_root: Path | str | None = None,
                 download: bool = False, progress: Progress | None = None, use_cache: bool = True,
                 write_cache: bool = True) -> Evaluation:
    """Evaluate run folder ``run``'s checkpoint ``which`` ("best" or "last"): the cached result
    when its checkpoint file is unchanged, else computed (and cached). Raises
    :class:`EvaluationError` (a problem the user can fix, named) or :class:`EvaluationCancelled`."""
    from .data import DataError, check_available, load_dataset
    from .devices import DeviceUnavailable, resolve_device

    run = Path(run)
    if use_cache:
        cached = load_cached(run, which)
        if cached is not None:
            return cached
    try:
        dev = resolve_device(device)
    except DeviceUnavailable as exc:
        raise EvaluationError(str(exc), exc.hint) from None
    if progress is not None:
        progress("loading the model", 0, 1)
    preset, model, ckpt, path = load_run_model(run, which, dev)
    ref = checkpoint_ref(path, which, ckpt)
    if progress is not None:
        progress("loading the data", 0, 1)
    try:
        check_available(preset.task, data_root, download)
        data = load_dataset(preset.task, dev, data_root, download, int(preset.train.seed))
    except DataError as exc:
        raise EvaluationError(exc.message, exc.hint) from None
    ev = evaluate_model(model, data, preset, ref, run_name=run.name, progress=progress)
    if write_cache:
        try:
            save_cache(run, ev)
        except OSError:
            pass   # a read-only run folder: the figures are still returned, only not kept
    return ev


# ---------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------
_ARRAYS = ("true", "predicted", "confidence", "confusion", "precision", "recall", "f1", "support", "mistake_index",
           "mistake_topk", "mistake_topp", "mistake_images")
_SCALARS = ("run_name", "dataset", "task", "split", "loss", "accuracy", "macro_f1", "rmse", "mae", "r2")


def cache_path(run: Path | str, which: str) -> Path:
    return Path(run) / EVALUATION_DIR / f"{which}.npz"


def save_cache(run: Path | str, ev: Evaluation) -> Path:
    """Write ``ev`` to ``<run>/evaluation/<which>.npz`` atomically; refuses a folder that is a
    symbolic link (``OSError``)."""
    from dataclasses import asdict

    from .fileio import atomic_write

    folder = Path(run) / EVALUATION_DIR
    if folder.is_symlink():
        raise OSError(f"{folder} is a symbolic link: an evaluation is never written through one")
    meta: dict[str, Any] = {"format": EVALUATION_FORMAT, "checkpoint": asdict(ev.checkpoint),
                            "input_shape": list(ev.input_shape), "class_names": list(ev.class_names),
                            "notes": ev.notes}
    for name in _SCALARS:
        meta[name] = getattr(ev, name)
    if ev.boundary is not None:
        meta["boundary"] = asdict(ev.boundary)
    if ev.points is not None:
        meta["points"] = asdict(ev.points)
    arrays = {name: np.asarray(getattr(ev, name)) for name in _ARRAYS if getattr(ev, name) is not None}
    arrays["meta"] = np.array(json.dumps(meta, allow_nan=True))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    path = cache_path(run, ev.checkpoint.which)
    atomic_write(path, lambda handle: handle.write(data))
    return path


def load_cached(run: Path | str, which: str) -> Evaluation | None:
    """The cached evaluation of ``run``'s checkpoint ``which`` if it was computed from the
    checkpoint file there now (same identity) by this format; else None (never raises)."""
    from .boundary import BoundaryPoints, DecisionBoundary

    run = Path(run)
    path = cache_path(run, which)
    current = _current_checkpoint(run, which)
    try:
        st = os.lstat(path)
        if current is None or not stat.S_ISREG(st.st_mode) or (run / EVALUATION_DIR).is_symlink():
            return None
        cst = os.stat(current)
        key = f"{cst.st_size}:{cst.st_mtime_ns}:{cst.st_ino}"
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"][()]))
            if meta.get("format") != EVALUATION_FORMAT or meta["checkpoint"]["key"] != key \
                    or meta["checkpoint"]["file"] != current.name:
                return None
            arrays = {name: np.array(npz[name]) for name in _ARRAYS if name in npz.files}
        ck = meta["checkpoint"]
        ev = Evaluation(
            run_name=str(meta["run_name"]), dataset=str(meta["dataset"]), task=str(meta["task"]),
            split=str(meta["split"]), checkpoint=CheckpointRef(str(ck["which"]), str(ck["file"]), int(ck["epoch"]),
                                                               int(ck["step"]), str(ck["key"])),
            input_shape=tuple(int(d) for d in meta["input_shape"]),
            class_names=tuple(str(c) for c in meta["class_names"]), loss=float(meta["loss"]),
            true=arrays.pop("true"), predicted=arrays.pop("predicted"), notes=dict(meta.get("notes") or {}))
        for name, value in arrays.items():
            setattr(ev, name, value)
        for name in ("accuracy", "macro_f1", "rmse", "mae", "r2"):
            value = meta.get(name)
            setattr(ev, name, None if value is None else float(value))
        if meta.get("boundary"):
            b = meta["boundary"]
            ev.boundary = DecisionBoundary(**{**b, "x_range": tuple(b["x_range"]), "y_range": tuple(b["y_range"]),
                                              "classes": tuple(b["classes"]), "confidence": tuple(b["confidence"]),
                                              "values": tuple(b["values"])})
        if meta.get("points"):
            p = meta["points"]
            ev.points = BoundaryPoints(**{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})
        return ev
    except (OSError, ValueError, KeyError, TypeError, EOFError):  # absent, damaged or from another version
        return None
