"""Run directories: what a training run leaves on disk, and how to list, rename and delete them.

Layout of one run (``<root>/<YYYYmmdd-HHMMSS>-<slug>/``)::

    preset.json            exactly what ran (spec.save_preset)
    metrics.jsonl          one JSON object per line: Metrics.flat() / EpochEnd.flat(); appended and
                           flushed at each emit (a killed run leaves at most one torn last line)
    summary.json           RunSummary.to_dict(); status "running" at start, final figures at the end
    run.json               user metadata (the label shown in the runs list)
    checkpoints/last.pt    model + optimiser + scheduler state, epoch, step, RNG states
    checkpoints/best.pt    the same at the best validation figure
    evaluation/<ckpt>.npz  a checkpoint's cached evaluation (workbench.evaluation; eval also writes
                           its CSV files and figures into evaluation/<ckpt>/ by default)
    .lock                  locked by the training process while it runs (run_is_live)

A run's epoch record is in metrics.jsonl before its checkpoint is written, so a run killed at any
point resumes with every epoch record. A summary still saying "running" whose ``.lock`` no live
process holds is listed as "interrupted".

Checkpoints hold only tensors, dicts, lists, tuples, ints, floats, strings, bools and None, so
``torch.load(path, weights_only=True)`` reads them. JSON files are written atomically (temp file +
``os.replace``), so a crash never leaves half a summary.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from .events import RunSummary
from .fileio import atomic_write, atomic_write_text, remove_stale_temps, try_lock

__all__ = [
    "default_runs_root",
    "new_run_dir",
    "RunRecord",
    "RunWriter",
    "list_runs",
    "load_run",
    "delete_run",
    "rename_run",
    "read_metrics",
    "read_summary",
    "write_json_atomic",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_path",
    "NotARunDir",
    "RunFolderError",
    "run_is_live",
]

PRESET_FILE = "preset.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"
#: Locked by the training process for the run's whole life (see :func:`run_is_live`).
LOCK_FILE = ".lock"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class NotARunDir(ValueError):
    """The folder is not a run directory (no preset.json / summary.json)."""


class RunFolderError(ValueError):
    """A run cannot write into its folder: ``str(e)`` says why, ``hint`` what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def run_is_live(path: Path | str) -> bool:
    """Whether a live process is training in run folder ``path`` (it holds the folder's lock).

    The trainer locks ``.lock`` for the run's whole life; the OS drops the lock when the process
    ends, however it ends (SIGKILL, a crash, a power cut), so a "running" summary whose lock is
    free belongs to an interrupted run."""
    try:
        fd = os.open(Path(path) / LOCK_FILE, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except OSError:  # no lock file (never trained here, or an older version) or not a plain file
        return False
    try:
        return not try_lock(fd)
    finally:
        os.close(fd)  # drops the probe's own lock at once


def default_runs_root() -> Path:
    """Where runs are kept: env ``AFWB_RUNS`` if set, else ``user_data_dir("afwb")/runs``."""
    env = os.environ.get("AFWB_RUNS")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("afwb")) / "runs"


def slugify(text: str, max_len: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug[:max_len].rstrip("-")) or "run"


def new_run_dir(root: Path | str, preset_name: str) -> Path:
    """Reserve and create a fresh ``<root>/<YYYYmmdd-HHMMSS>-<slug>`` (``-2``, ``-3``... if taken).

    The folder is claimed by ``mkdir`` itself (no ``exist_ok``), which the OS makes atomic: of two
    processes that want the same name in the same second, one gets it and the other the next
    suffix, so two runs never share a folder."""
    root = Path(root)
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{slugify(preset_name)}"
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 10_000):
        path = root / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RuntimeError(f"could not create a unique run folder under {root}")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temp file in the same folder and ``os.replace``."""
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=True) + "\n")


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _json_problem(name: str, exc: BaseException) -> str:
    """Why a run file could not be read, in one line."""
    if isinstance(exc, RecursionError):
        return f"{name} is nested too deeply to read"
    if isinstance(exc, OSError):
        return f"{name} cannot be read: {exc.strerror or exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"{name} is not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"{name} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    return f"{name}: {exc}"


def read_metrics(path: Path | str) -> list[dict[str, Any]]:
    """All complete records of ``metrics.jsonl`` (``path`` = run folder or the file). Never raises:
    a torn or unparsable line (a run killed mid-write, a damaged file: nesting too deep, a number
    of more than 4,300 digits, a value that is not an object) is skipped; an unreadable file gives
    the records read so far."""
    path = Path(path)
    out: list[dict[str, Any]] = []
    try:
        if path.is_dir():
            path = path / METRICS_FILE
        if not path.exists():
            return []
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
                    continue
                if isinstance(rec, dict):
                    out.append(rec)
    except OSError:
        pass
    return out


def _load_summary(path: Path) -> tuple[RunSummary | None, str | None]:
    """(summary, None), (None, None) when there is no summary.json, or (None, why it is damaged)."""
    file = path / SUMMARY_FILE
    if not file.exists():
        return None, None
    try:
        return RunSummary.from_dict(_read_json(file)), None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: also RunSummary's type checks
        return None, _json_problem(SUMMARY_FILE, exc)


def read_summary(path: Path | str) -> RunSummary | None:
    """The run's summary; None when summary.json is missing or damaged (see :func:`load_run`)."""
    return _load_summary(Path(path))[0]


@dataclass
class RunRecord:
    """One run folder as the runs list shows it. ``preset`` is the parsed preset (None if unreadable).

    ``problems`` says, one line each, what is damaged in the folder (an unreadable summary.json,
    run.json or preset.json); such a run is still listed, with :attr:`status` ``"damaged"`` when
    its summary is the part that is lost."""

    path: Path
    preset: Any | None
    summary: RunSummary | None
    label: str = ""
    problems: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        if self.summary is not None and self.summary.preset_name:
            return self.summary.preset_name
        if self.preset is not None and getattr(self.preset, "name", ""):
            return str(self.preset.name)
        return self.path.name

    @property
    def status(self) -> str:
        """The summary's status; ``"damaged"`` when summary.json cannot be used, ``"?"`` when absent."""
        if self.summary is not None:
            return self.summary.status
        return "damaged" if self.problems else "?"


def _is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / SUMMARY_FILE).exists() or (path / PRESET_FILE).exists())


def _load_label(path: Path) -> tuple[str, str | None]:
    file = path / RUN_FILE
    if not file.exists():
        return "", None
    try:
        data = _read_json(file)
    except (OSError, ValueError, RecursionError) as exc:
        return "", _json_problem(RUN_FILE, exc)
    if not isinstance(data, dict):
        return "", f"{RUN_FILE} must hold a JSON object, got a {type(data).__name__}"
    label = data.get("label", "")
    if not isinstance(label, str):
        return "", f"{RUN_FILE}: label must be a string, got a {type(label).__name__}"
    return label, None


def load_run(path: Path | str) -> RunRecord:
    """Read one run folder (preset, summary, label); missing parts are None/empty, damaged parts
    are None/empty with the reason in ``problems``. Raises only :class:`NotARunDir`."""
    path = Path(path)
    if not _is_run_dir(path):
        raise NotARunDir(f"{path} is not a run folder (no {SUMMARY_FILE} or {PRESET_FILE})")
    problems: list[str] = []
    summary, why = _load_summary(path)
    if why:
        problems.append(why)
    if summary is not None and summary.status == "running" and not run_is_live(path):
        summary = replace(summary, status="interrupted")
    label, why = _load_label(path)
    if why:
        problems.append(why)
    preset = None
    if (path / PRESET_FILE).exists():
        try:
            from .spec import load_preset

            preset = load_preset(path / PRESET_FILE)
        except Exception as exc:  # noqa: BLE001 - an unreadable preset still lists the run
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(f"{PRESET_FILE} cannot be used: {first}")
    return RunRecord(path=path, preset=preset, summary=summary, label=label, problems=tuple(problems))


def list_runs(root: Path | str | None = None) -> list[RunRecord]:
    """Every run folder directly under ``root`` (default :func:`default_runs_root`), newest first.

    A folder that cannot be read is listed with the reason in ``problems``; only an unreadable
    ``root`` itself raises (``OSError``). Temp files that killed saves left in a run folder are
    removed (:func:`workbench.fileio.remove_stale_temps`: a minute old and not locked)."""
    root = Path(root) if root is not None else default_runs_root()
    if not root.is_dir():
        return []
    records = []
    for child in sorted(root.iterdir(), key=lambda p: p.name, reverse=True):
        try:
            if _is_run_dir(child):
                records.append(load_run(child))
                # orphans of killed saves (never a live one's), also of cached evaluations (workbench.evaluation)
                for folder in (child, child / CHECKPOINT_DIR, child / "evaluation"):
                    remove_stale_temps(folder)
        except Exception as exc:  # noqa: BLE001 - one bad folder never hides the others
            records.append(RunRecord(path=child, preset=None, summary=None,
                                     problems=(f"the folder cannot be read: {type(exc).__name__}: {exc}",)))
    return records


def delete_run(path: Path | str) -> None:
    """Remove a run folder. Refuses folders that are not run folders, and symbolic links (whose
    target is not ours to remove)."""
    path = Path(path)
    if path.is_symlink():
        raise NotARunDir(f"refusing to delete {path}: it is a symbolic link to {os.readlink(path)}, not a run "
                         "folder of the runs list; remove the link yourself if it is no longer wanted")
    if not _is_run_dir(path):
        raise NotARunDir(f"refusing to delete {path}: not a run folder")
    shutil.rmtree(path)


def rename_run(path: Path | str, new_label: str) -> None:
    """Set the label shown for a run (stored in ``run.json``; the folder is not moved)."""
    path = Path(path)
    if not _is_run_dir(path):
        raise NotARunDir(f"{path} is not a run folder")
    data: dict[str, Any] = {}
    try:
        found = _read_json(path / RUN_FILE)
        data = found if isinstance(found, dict) else {}
    except (OSError, ValueError, RecursionError):  # absent or damaged: a fresh run.json
        pass
    data["label"] = str(new_label)
    write_json_atomic(path / RUN_FILE, data)


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------
def checkpoint_path(run_dir: Path | str, which: str = "last") -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"{which}.pt"


def save_checkpoint(state: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` to a fresh temp file and rename (:func:`workbench.fileio.atomic_write`), so a
    crash keeps the previous checkpoint and two writers never share a temp file."""
    import torch

    folder = Path(path).parent
    if folder.is_symlink():
        raise RunFolderError(f"{folder} is a symbolic link (to {os.readlink(folder)}): checkpoints are never "
                             "written through one", "remove the link, or start a new run")
    atomic_write(path, lambda handle: torch.save(dict(state), handle))


def load_checkpoint(path: Path | str, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code from the file)."""
    import torch

    return torch.load(Path(path), map_location=map_location, weights_only=True)


# ---------------------------------------------------------------------------------------------
# Writer used by the trainer
# ---------------------------------------------------------------------------------------------
def _planted_links(run_dir: Path) -> list[str]:
    """The entries a run writes (or reads and rewrites) that are symbolic links, as ``name -> target``."""
    names = [PRESET_FILE, METRICS_FILE, SUMMARY_FILE, RUN_FILE, CHECKPOINT_DIR,
             f"{CHECKPOINT_DIR}/last.pt", f"{CHECKPOINT_DIR}/best.pt"]
    out = []
    for name in names:
        path = run_dir / name
        if path.is_symlink():
            with contextlib.suppress(OSError):
                out.append(f"{name} -> {os.readlink(path)}")
                continue
            out.append(name)
    return out


class RunWriter:
    """Appends to one run folder while a run trains. ``None`` folder → every call is a no-op.

    :meth:`claim` takes the folder for this run (its lock, held until :meth:`close`); nothing is
    written into a folder that was not claimed."""

    #: How long :meth:`claim` retries a lock held for a moment by a process listing the runs.
    CLAIM_WAIT_S = 2.0

    def __init__(self, run_dir: Path | str | None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._metrics_fh = None
        self._lock_fd: int | None = None

    @property
    def enabled(self) -> bool:
        return self.run_dir is not None

    @property
    def owned(self) -> bool:
        """Whether this writer holds the run folder (claimed and not closed)."""
        return self._lock_fd is not None

    def claim(self, *, resume: bool = False) -> None:
        """Take the run folder for this run: create it if needed, lock it for the run's life, and
        (unless ``resume``) make sure it holds no other run. Raises :class:`RunFolderError`."""
        if self.run_dir is None or self._lock_fd is not None:
            return
        run_dir = self.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o666)
        except OSError as exc:
            raise RunFolderError(f"cannot lock the run folder {run_dir}: {exc.strerror or exc}",
                                 "check that the folder is writable and that its .lock is a plain file") from None
        deadline = time.monotonic() + self.CLAIM_WAIT_S
        while not try_lock(fd):
            if time.monotonic() > deadline:
                os.close(fd)
                raise RunFolderError(f"run folder {run_dir} is in use: another run is training in it",
                                     "wait for that run to end (or stop it), or start a new run")
            time.sleep(0.05)
        if not resume and any((run_dir / name).exists() for name in (SUMMARY_FILE, METRICS_FILE)):
            os.close(fd)
            raise RunFolderError(f"run folder {run_dir} already holds a run",
                                 "pick a new folder, or resume that run")
        links = _planted_links(run_dir)
        if links:
            os.close(fd)
            raise RunFolderError(f"run folder {run_dir} holds symbolic links where the run writes its files: "
                                 + ", ".join(links) + "; a run never writes through a link",
                                 "this folder may come from somewhere untrusted: start a new run, or replace "
                                 "the links with plain files")
        with contextlib.suppress(OSError):  # for people looking at the folder; the lock is what counts
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def open(self, preset: Any, summary: RunSummary, *, resume: bool = False,
             keep_until_step: int | None = None) -> None:
        """Claim the folder (if not yet), write ``preset.json`` and the "running" summary, open ``metrics.jsonl``.

        On ``resume`` the metrics file is appended to, after dropping a torn last line and every
        record past ``keep_until_step`` (written after the checkpoint by the interrupted run)."""
        if self.run_dir is None:
            return
        self.claim(resume=resume)
        if not resume or not (self.run_dir / PRESET_FILE).exists():
            from .spec import save_preset

            save_preset(preset, self.run_dir / PRESET_FILE)
        self.write_summary(summary)
        metrics = self.run_dir / METRICS_FILE
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC
        if resume:
            self._keep_for_resume(metrics, keep_until_step)
        else:
            flags |= os.O_EXCL  # claim() found none: a file there now is not ours
        try:
            fd = os.open(metrics, flags, 0o666)
        except OSError as exc:
            raise RunFolderError(f"cannot open {metrics}: {exc.strerror or exc}",
                                 "a run folder's files must be plain files; start a new run") from None
        self._metrics_fh = os.fdopen(fd, "w", encoding="utf-8", newline="\n")

    @staticmethod
    def _keep_for_resume(path: Path, keep_until_step: int | None) -> None:
        """Rewrite ``metrics.jsonl`` (atomically) with its complete records up to ``keep_until_step``:
        a torn last line, unreadable lines and the records the interrupted run wrote after its
        checkpoint are dropped, so the resumed run appends on a fresh line without duplicates."""
        if not path.exists():
            return
        kept = []
        for rec in read_metrics(path):
            step = rec.get("step", 0)
            if isinstance(step, bool) or not isinstance(step, int):
                continue  # a record that cannot be placed on the step axis
            if keep_until_step is None or step <= keep_until_step:
                kept.append(json.dumps(rec, allow_nan=True) + "\n")
        atomic_write_text(path, "".join(kept))

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        if self._metrics_fh is None:
            return
        fh = self._metrics_fh
        for rec in records:
            fh.write(json.dumps(rec, allow_nan=True) + "\n")
        fh.flush()

    def write_summary(self, summary: RunSummary) -> None:
        if self.run_dir is None:
            return
        write_json_atomic(self.run_dir / SUMMARY_FILE, summary.to_dict())

    def save(self, which: str, state: Mapping[str, Any]) -> None:
        if self.run_dir is None:
            return
        save_checkpoint(state, checkpoint_path(self.run_dir, which))

    def close(self) -> None:
        """Close the metrics file and give the folder up (its lock)."""
        try:
            if self._metrics_fh is not None:
                try:
                    self._metrics_fh.close()
                finally:
                    self._metrics_fh = None
        finally:
            if self._lock_fd is not None:
                fd, self._lock_fd = self._lock_fd, None
                os.close(fd)
