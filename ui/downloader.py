"""Downloads a data set off the GUI thread, with progress and cancel.

:class:`DatasetDownload` (a ``QObject`` on the GUI thread) runs
:func:`workbench.data.download_dataset` (torchvision's files, MD5-checked, into its layout under the
data folder) in a Python thread and reports through queued signals, at most every
:data:`PROGRESS_MS` milliseconds and at the end of every file:

* ``progress(what, done, total)`` — ``done`` of ``total`` bytes of the file ``what`` (total 0:
  unknown);
* ``finished(folder)`` — the data set is in ``folder``;
* ``failed(message, hint)`` — a network or disk problem, in words;
* ``cancelled()`` — :meth:`cancel` was honoured; nothing half-written was kept.

Exactly one of the last three ends a download. The thread touches no Qt object: it only emits.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

__all__ = ["DatasetDownload", "PROGRESS_MS"]

#: Shortest interval, in milliseconds, between two progress signals of one file.
PROGRESS_MS = 100


class DatasetDownload(QObject):
    """One download of data set ``name`` into ``root``; :meth:`start` it, :meth:`cancel` it,
    :meth:`wait` for its thread (the window does before it closes)."""

    progress = Signal(str, int, int)
    finished = Signal(str)
    failed = Signal(str, str)
    cancelled = Signal()

    def __init__(self, name: str, root: Path, parent: QObject | None = None, *,
                 fetch: Callable[..., Path] | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.root = Path(root)
        self._fetch = fetch
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a DatasetDownload runs once")
        self._thread = threading.Thread(target=self._run, name=f"download-{self.name}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop before the next chunk arrives (thread-safe)."""
        self._cancel.set()

    def wait(self, timeout_s: float = 10.0) -> bool:
        """Join the thread; True when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # ----------------------------------------------------------------------------- worker thread
    def _run(self) -> None:
        from workbench.data import DataError, LoadCancelled, download_dataset

        fetch = self._fetch or download_dataset
        last = {"what": "", "t": 0.0}

        def progress(what: str, done: int, total: int) -> None:
            if self._cancel.is_set():
                raise LoadCancelled(what)
            now = time.monotonic()
            end = total > 0 and done >= total
            if what != last["what"] or end or (now - last["t"]) * 1000 >= PROGRESS_MS:
                last["what"], last["t"] = what, now
                self.progress.emit(what, int(done), int(total))

        try:
            folder = fetch(self.name, self.root, progress)
        except LoadCancelled:
            self.cancelled.emit()
        except DataError as exc:
            self.failed.emit(exc.message, exc.hint)
        except OSError as exc:  # the disk: full, not writable
            self.failed.emit(f"cannot write into {self.root}: {exc.strerror or exc}",
                             "choose another data folder (Task → Data folder → Change…)")
        except Exception as exc:  # noqa: BLE001 - anything else still ends the download with a message
            self.failed.emit(f"downloading '{self.name}' failed: {type(exc).__name__}: {exc}",
                             "try again; if it fails again, download with `python main.py download "
                             f"{self.name}`")
        else:
            self.finished.emit(str(folder))
