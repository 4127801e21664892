"""Launch one training run on several processes with torchrun, and follow it like a local run.

:class:`TorchrunLaunch` starts ``python -m torch.distributed.run --standalone --nproc-per-node N -m
workbench.cli train ...`` (PyTorch's own launcher: a one-machine rendezvous on a free port, the
elastic agent that starts, watches and tears down the ranks) and has the same face as a
:class:`workbench.trainer.Trainer`: ``run(on_event) -> RunSummary``, ``stop()``, ``pause()``,
``resume()``. Rank 0 streams its events back over :mod:`workbench.eventlink`, so ``on_event``
receives exactly what a local run would send, on the thread that called ``run``. The command
line's ``train --nproc N`` and the app's "all N GPUs (DDP)" both use it.

Who writes what: the caller reserves the run folder before the launch (``new_run_dir``), rank 0
alone writes into it. The launcher writes there only when no rank could: when the processes ended
without a final summary (rank 0 killed, the node lost), it takes the folder's lock — free once
rank 0 is gone — and records the run as failed with torchrun's exit status, so the runs list never
shows such a run as still running.

Stopping: ``stop()`` asks rank 0 over the link (the ranks agree at the next emit, save a
checkpoint and end as ``Stopped``; asked before rank 0 has connected, it gets the request when it
does); a second ``stop()`` sends SIGTERM to torchrun, which passes it on to every rank (each stops
the same way, at the next emit) and kills what is left 30 s later.
"""
from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from .eventlink import EventServer
from .events import Failed, Finished, RunSummary, Stopped

__all__ = ["TorchrunLaunch", "launch_preset", "torchrun_command", "REPO_ROOT"]

#: The folder that holds the ``workbench`` package (put on the workers' PYTHONPATH).
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Lines of the processes' output kept for a failure message (captured output only).
OUTPUT_TAIL_LINES = 40


def torchrun_command(nproc: int, worker_args: Sequence[str], python: str | None = None,
                     torchrun_args: Sequence[str] = ()) -> list[str]:
    """The command that trains ``worker_args`` (``train ...`` for :mod:`workbench.cli`) on ``nproc``
    processes of this machine (``--standalone``: torchrun picks a free port itself)."""
    return [python or sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(int(nproc)), *torchrun_args, "-m", "workbench.cli", *worker_args]


class TorchrunLaunch:
    """One run trained by ``nproc`` torchrun processes (see the module docstring).

    ``worker_args``: the ``workbench.cli`` arguments of every rank (``train PRESET --run-dir DIR
    ...``). ``capture_output``: keep the processes' output (the app) instead of passing it through
    to this process's stdout/stderr (the command line); its tail goes into a failure message."""

    def __init__(self, worker_args: Sequence[str], nproc: int, run_dir: Path | str, *, preset_name: str = "",
                 capture_output: bool = False, env: dict[str, str] | None = None,
                 torchrun_args: Sequence[str] = ()) -> None:
        if int(nproc) < 1:
            raise ValueError(f"nproc must be at least 1, got {nproc}")
        self.worker_args = list(worker_args)
        self.nproc = int(nproc)
        self.run_dir = Path(run_dir)
        self.preset_name = preset_name
        self.capture_output = capture_output
        self.extra_env = dict(env or {})
        self.torchrun_args = list(torchrun_args)
        self._lock = threading.Lock()
        self._server: EventServer | None = None
        self._proc: subprocess.Popen | None = None
        self._stop_requests = 0
        self._paused = False
        self._tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self.returncode: int | None = None

    # -- control (any thread) -------------------------------------------------------------------
    def stop(self) -> None:
        """First call: ask rank 0 to stop (all ranks stop at the next emit, with a checkpoint).
        Later calls: SIGTERM to torchrun (passed on to every rank)."""
        with self._lock:
            self._stop_requests += 1
            first = self._stop_requests == 1
            server, proc = self._server, self._proc
        if first:
            if server is not None:
                server.send("stop")  # queued until rank 0 connects; before the launch, run() sends it
            return
        self._signal(proc, signal.SIGTERM)

    def pause(self) -> None:
        self._paused = True
        if self._server is not None:
            self._server.send("pause")

    def resume(self) -> None:
        self._paused = False
        if self._server is not None:
            self._server.send("resume")

    @property
    def stop_requested(self) -> bool:
        return self._stop_requests > 0

    @staticmethod
    def _signal(proc: subprocess.Popen | None, sig: int) -> None:
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            if os.name == "posix":
                os.killpg(proc.pid, sig)  # torchrun leads its own session (see run)
            else:  # pragma: no cover - Windows
                proc.send_signal(sig)

    # -- the run ------------------------------------------------------------------------------------
    def command(self) -> list[str]:
        return torchrun_command(self.nproc, self.worker_args, torchrun_args=self.torchrun_args)

    def run(self, on_event: Callable[[Any], None]) -> RunSummary:
        """Launch, forward rank 0's events to ``on_event`` until the processes end, return the summary."""
        server = EventServer()
        env = dict(os.environ)
        env.update(self.extra_env)
        env.update(server.environment())
        path = env.get("PYTHONPATH", "")
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
        popen: dict[str, Any] = {"env": env, "cwd": str(REPO_ROOT)}
        if os.name == "posix":
            popen["start_new_session"] = True  # a terminal's Ctrl-C reaches us, not torchrun: we stop it gently
        if self.capture_output:
            popen.update(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        final: Any = None
        try:
            proc = subprocess.Popen(self.command(), **popen)
        except OSError as exc:
            server.close()
            return self._fail_without_report(on_event, f"cannot start torchrun: {exc.strerror or exc}",
                                             "check that PyTorch is installed for this Python")
        with self._lock:
            self._server, self._proc = server, proc
            stop_now = self._stop_requests > 0
        if self._paused:
            server.send("pause")
        if stop_now:
            server.send("stop")
        reader = None
        if self.capture_output:
            reader = threading.Thread(target=self._drain, args=(proc,), name="afwb-torchrun-output", daemon=True)
            reader.start()
        try:
            while True:
                for event in server.poll(0.1):
                    on_event(event)
                    if isinstance(event, (Finished, Stopped, Failed)):
                        final = event
                if proc.poll() is not None:
                    for event in server.poll(0.0):  # what was sent just before the end
                        on_event(event)
                        if isinstance(event, (Finished, Stopped, Failed)):
                            final = event
                    break
        except BaseException:
            self._signal(proc, signal.SIGTERM)  # never leave the ranks behind
            raise
        finally:
            self.returncode = proc.wait()
            if reader is not None:
                reader.join(5.0)
            server.close()
            with self._lock:
                self._server = None
        if final is not None:
            return final.summary
        return self._final_from_folder(on_event)

    def _drain(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._tail.append(line)

    # -- when rank 0 sent no final event ---------------------------------------------------------
    def _final_from_folder(self, on_event: Callable[[Any], None]) -> RunSummary:
        from .runs import read_summary

        summary = read_summary(self.run_dir)
        if summary is not None and summary.status in ("finished", "stopped", "failed"):
            event: Any = {"finished": Finished, "stopped": Stopped}.get(summary.status)
            event = event(summary) if event else Failed(summary.message, summary.hint, None, summary)
            on_event(event)
            return summary
        code = self.returncode
        how = (f"killed by signal {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exit code {code}")
        detail = self._tail_detail()
        return self._fail_without_report(
            on_event, f"the {self.nproc} training processes ended without a final report (torchrun: {how})"
            + (f": {detail}" if detail else ""),
            "torchrun's report names the rank that failed and how; "
            + ("the last checkpoint is kept: resume the run with --resume" if summary is not None
               else "start the run again"), summary)

    def _tail_detail(self) -> str:
        """The most telling line of the captured output (an ``error:`` line, else the last)."""
        lines = list(self._tail)
        for line in reversed(lines):
            if line.startswith("error:") or "Error" in line:
                return line[:300]
        return lines[-1][:300] if lines else ""

    def _fail_without_report(self, on_event: Callable[[Any], None], message: str, hint: str,
                             before: RunSummary | None = None) -> RunSummary:
        """Record the failure in the run folder (its lock first: no rank holds it any more) and send it."""
        from dataclasses import replace

        from .runs import RunFolderError, RunWriter

        if before is not None:
            summary = replace(before, status="failed", message=message, hint=hint)
        else:
            summary = RunSummary(status="failed", preset_name=self.preset_name, task="classification", device="",
                                 run_dir=str(self.run_dir), message=message, hint=hint, world_size=self.nproc)
        writer = RunWriter(self.run_dir)
        try:
            writer.claim(resume=True)
            writer.write_summary(summary)
        except (RunFolderError, OSError):
            pass  # a rank still holds the folder (it will write its own summary), or it is gone
        finally:
            writer.close()
        on_event(Failed(message, hint, None, summary))
        return summary


def launch_preset(preset: Any, run_dir: Path | str, nproc: int, *, data_root: Path | str | None = None,
                  device: str | None = None, capture_output: bool = True,
                  env: dict[str, str] | None = None) -> TorchrunLaunch:
    """A :class:`TorchrunLaunch` for an in-memory preset (the app's): the preset goes to the ranks
    as a private temporary file (removed when the run ends); ``device`` overrides train.device."""
    from .spec import save_preset

    folder = Path(tempfile.mkdtemp(prefix="afwb-launch-"))
    preset_file = folder / "preset.json"
    save_preset(preset, preset_file)
    args = ["train", str(preset_file), "--run-dir", str(run_dir), "--quiet"]
    if data_root is not None:
        args += ["--data-root", str(data_root)]
    if device is not None:
        args += ["--device", device]
    launch = _CleanupLaunch(args, nproc, run_dir, preset_name=str(getattr(preset, "name", "")),
                            capture_output=capture_output, env=env)
    launch.temp_folder = folder
    return launch


class _CleanupLaunch(TorchrunLaunch):
    temp_folder: Path | None = None

    def run(self, on_event: Callable[[Any], None]) -> RunSummary:
        try:
            return super().run(on_event)
        finally:
            if self.temp_folder is not None:
                import shutil

                shutil.rmtree(self.temp_folder, ignore_errors=True)
