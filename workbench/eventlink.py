"""The event link: rank 0 of a DDP run streams its events to the process that launched it.

A run launched by :mod:`workbench.launch` (``python main.py train --nproc N``, or the app's "all N
GPUs (DDP)") trains in torchrun's worker processes, not in the launcher. Rank 0 connects back to
the launcher over a local TCP socket and sends every event it would hand to a local ``on_event``
— ``RunStarted``, ``Metrics``, ``EpochEnd``, the final event, and any registered hook event — as one
JSON line each; the launcher turns the lines back into the same frozen dataclasses, so its
listeners (the app's worker thread, the command line's progress bar) cannot tell the difference.
The other direction carries the launcher's commands to rank 0: ``stop``, ``pause``, ``resume``
(the ranks then agree on them at the next emit, see :mod:`workbench.distributed`). A link that
breaks while the run trains (the launcher was closed or killed) stops the run the same way: a
run nobody follows any more does not train on in the background.

Wire format: the client's first line is ``AFWB-LINK/1 <token>`` (the token is a random secret the
launcher passes in the worker's environment, never on a command line, so no other local process
can feed or steer the run); then one JSON object per line, ``{"__type__": "Metrics", ...fields}``,
nested dataclasses alike, tuples as lists (restored from the field types), NaN/inf as JSON's
``NaN``/``Infinity``. Only registered classes are ever built from a line.

Sending never blocks training: :class:`EventSender` queues the events and a background thread
writes them; if the launcher goes away the events are dropped (the run folder has them all).
"""
from __future__ import annotations

import dataclasses
import json
import os
import queue
import secrets
import socket
import threading
import typing
from typing import Any, Callable, Mapping

from . import events as _events

__all__ = ["register_event", "encode", "decode", "EventServer", "EventSender", "LINK_ENV", "TOKEN_ENV",
           "sender_from_env", "connect_rank0"]

#: Environment variables that tell rank 0 where the launcher listens and with which token.
LINK_ENV = "AFWB_EVENT_LINK"
TOKEN_ENV = "AFWB_EVENT_TOKEN"
_HELLO = "AFWB-LINK/1"

_REGISTRY: dict[str, type] = {}
_TUPLE_FIELDS: dict[type, frozenset[str]] = {}


def register_event(cls: type) -> type:
    """Let ``cls`` (a dataclass of JSON-able fields: numbers, strings, None, tuples/lists,
    string-keyed mappings, registered dataclasses) cross the link. Usable as a decorator."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    _REGISTRY[cls.__name__] = cls
    hints = typing.get_type_hints(cls)
    _TUPLE_FIELDS[cls] = frozenset(name for name, hint in hints.items()
                                   if typing.get_origin(hint) is tuple or hint is tuple)
    return cls


for _cls in (_events.RunSummary, _events.RunStarted, _events.Metrics, _events.EpochEnd, _events.Finished,
             _events.Stopped, _events.Failed):
    register_event(_cls)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"__type__": type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _built(value: Any) -> Any:
    if isinstance(value, dict):
        name = value.get("__type__")
        if isinstance(name, str):
            cls = _REGISTRY.get(name)
            if cls is None:
                raise ValueError(f"unknown event type {name!r} on the event link")
            tuples = _TUPLE_FIELDS[cls]
            kwargs = {}
            for f in dataclasses.fields(cls):
                if f.name in value:
                    v = _built(value[f.name])
                    kwargs[f.name] = tuple(v) if f.name in tuples and isinstance(v, list) else v
            return cls(**kwargs)
        return {k: _built(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_built(v) for v in value]
    return value


def encode(event: Any) -> str:
    """One JSON line (with its newline) for a registered event."""
    if type(event).__name__ not in _REGISTRY:
        raise TypeError(f"{type(event).__name__} is not registered for the event link (register_event)")
    return json.dumps(_plain(event), allow_nan=True, separators=(",", ":")) + "\n"


def decode(line: str | bytes) -> Any:
    """The event a line from :func:`encode` describes."""
    return _built(json.loads(line))


# ---------------------------------------------------------------------------------------------
# The launcher's end
# ---------------------------------------------------------------------------------------------
class EventServer:
    """Listens on 127.0.0.1 (a free port the OS picks) for rank 0; :meth:`poll` returns its events.

    Single-threaded: the caller's thread polls (so its listeners run on that thread); :meth:`send`
    may be called from any thread."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(4)
        self._listen.setblocking(False)
        self._conn: socket.socket | None = None
        self._pending: list[socket.socket] = []
        self._buffer = b""
        self._send_lock = threading.Lock()
        self._queued: list[str] = []  # commands sent before rank 0 connected
        self.connected = threading.Event()

    @property
    def address(self) -> str:
        host, port = self._listen.getsockname()[:2]
        return f"{host}:{port}"

    def environment(self) -> dict[str, str]:
        """What rank 0's environment needs to connect back."""
        return {LINK_ENV: self.address, TOKEN_ENV: self.token}

    def send(self, command: str) -> bool:
        """Send a command line (``stop``, ``pause``, ``resume``); queued until rank 0 connects.
        False when the connection is gone (the run is ending)."""
        with self._send_lock:
            if self._conn is None:
                self._queued.append(command)
                return True
            try:
                self._conn.sendall((command + "\n").encode())
                return True
            except OSError:
                return False

    def poll(self, timeout: float) -> list[Any]:
        """Wait up to ``timeout`` seconds for traffic; return the events that arrived (maybe none)."""
        import selectors

        sel = selectors.DefaultSelector()
        try:
            if self._conn is None:
                sel.register(self._listen, selectors.EVENT_READ, "listen")
                for s in self._pending:
                    sel.register(s, selectors.EVENT_READ, "hello")
            else:
                sel.register(self._conn, selectors.EVENT_READ, "conn")
            ready = sel.select(timeout)
        finally:
            sel.close()
        out: list[Any] = []
        for key, _ in ready:
            if key.data == "listen":
                try:
                    conn, _addr = self._listen.accept()
                except OSError:
                    continue
                conn.settimeout(5.0)
                self._pending.append(conn)
            elif key.data == "hello":
                self._hello(key.fileobj)  # type: ignore[arg-type]
            else:
                out.extend(self._read())
        return out

    def _hello(self, conn: socket.socket) -> None:
        self._pending.remove(conn)
        try:
            line = b""
            while not line.endswith(b"\n") and len(line) < 256:
                chunk = conn.recv(1)
                if not chunk:
                    break
                line += chunk
        except OSError:
            line = b""
        if line.decode("ascii", "replace").strip() != f"{_HELLO} {self.token}":
            conn.close()  # not our rank 0
            return
        conn.settimeout(None)
        conn.setblocking(False)
        with self._send_lock:
            self._conn = conn
            queued, self._queued = self._queued, []
            for command in queued:
                try:
                    conn.sendall((command + "\n").encode())
                except OSError:
                    break
        self.connected.set()

    def _read(self) -> list[Any]:
        assert self._conn is not None
        try:
            chunk = self._conn.recv(1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            chunk = b""
        if not chunk:
            self._drop()
            return []
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [decode(line) for line in lines if line.strip()]

    def _drop(self) -> None:
        with self._send_lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def close(self) -> None:
        self._drop()
        for s in self._pending:
            s.close()
        self._pending = []
        self._listen.close()


# ---------------------------------------------------------------------------------------------
# Rank 0's end
# ---------------------------------------------------------------------------------------------
class EventSender:
    """Rank 0's side: ``send(event)`` queues (never blocks training); a thread writes the lines and
    another reads the launcher's commands into ``on_command(name)``."""

    def __init__(self, address: str, token: str, on_command: Callable[[str], None]) -> None:
        host, _, port = address.rpartition(":")
        self._sock = socket.create_connection((host, int(port)), timeout=10.0)
        self._sock.settimeout(None)
        self._sock.sendall(f"{_HELLO} {token}\n".encode())
        self._queue: queue.Queue[Any] = queue.Queue()
        self._on_command = on_command
        self._alive = True
        self._closing = False
        self._writer = threading.Thread(target=self._write_loop, name="afwb-event-link", daemon=True)
        self._reader = threading.Thread(target=self._read_loop, name="afwb-event-commands", daemon=True)
        self._writer.start()
        self._reader.start()

    def send(self, event: Any) -> None:
        if self._alive:
            self._queue.put(event)

    def _write_loop(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self._sock.sendall(encode(event).encode("utf-8"))
            except (OSError, TypeError):
                self._alive = False  # the launcher went away (or an event it cannot carry): drop

    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._sock.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:  # the launcher went away (closed, killed, its terminal gone): stop the run
                if not self._closing:
                    self._on_command("stop")
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                command = line.decode("ascii", "replace").strip()
                if command:
                    self._on_command(command)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), then close."""
        self._closing = True
        self._queue.put(None)
        self._writer.join(timeout)
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def sender_from_env(on_command: Callable[[str], None], environ: Mapping[str, str] | None = None
                    ) -> EventSender | None:
    """An :class:`EventSender` when this process was told where to send (see :data:`LINK_ENV`)."""
    env = os.environ if environ is None else environ
    address, token = env.get(LINK_ENV), env.get(TOKEN_ENV)
    if not address or not token:
        return None
    return EventSender(address, token, on_command)


def connect_rank0(trainer: Any, on_event: Callable[[Any], None]) -> tuple[EventSender | None, Callable[[Any], None]]:
    """For rank 0 of a launched run: (the sender, an ``on_event`` that feeds both ``on_event`` and the
    link); the launcher's commands drive ``trainer.stop/pause/resume``. (None, ``on_event``) when
    this process was not launched with a link, or the launcher cannot be reached (the run goes on:
    its folder records everything)."""

    def command(name: str) -> None:
        action = {"stop": trainer.stop, "pause": trainer.pause, "resume": trainer.resume}.get(name)
        if action is not None:
            action()

    try:
        sender = sender_from_env(command)
    except (OSError, ValueError):
        sender = None
    if sender is None:
        return None, on_event

    def both(event: Any) -> None:
        on_event(event)
        sender.send(event)

    return sender, both
