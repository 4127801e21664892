"""workbench.eventlink: rank 0's events reach the launcher as the same dataclasses; commands go back;
only the launcher's own rank 0 (the token) is heard; a lost launcher stops the run."""
from __future__ import annotations

import dataclasses
import math
import socket
import threading
import time

import pytest

from workbench.eventlink import EventSender, EventServer, decode, encode, register_event
from workbench.events import EpochEnd, Failed, Finished, Metrics, RunStarted, RunSummary, Stopped

HANG_S = 60.0


def _summary(**kw) -> RunSummary:
    base = dict(status="finished", preset_name="p", task="classification", device="cpu", run_dir="/r",
                epochs_completed=2, steps=46, seconds=1.5, learned_depth={"2_InfiniteDepth": 1.25}, world_size=2)
    base.update(kw)
    return RunSummary(**base)


EVENTS = [
    RunStarted(preset_name="p", run_dir="/r", device="cpu", device_name="CPU × 2 processes (DDP, gloo)",
               task="classification", epochs=2, steps_per_epoch=23, total_steps=46, train_size=1438, val_size=359,
               batch_size=64, params=100, trainable_params=90, layer_names=("0_ZConv2d", "1_SoftPool2d"),
               depth_layers=("2_InfiniteDepth",), hardness_layers=("0_ZConv2d",), world_size=2),
    Metrics(step=10, epoch=0, epoch_fraction=0.43, loss=2.25, lr=0.003, samples_per_s=4000.0, accuracy=0.5,
            grad_norm={"0_ZConv2d": 0.1, "1_SoftPool2d": float("nan")}, weight_norm={"0_ZConv2d": float("inf")},
            depth_w={"2_InfiniteDepth": 1.5}, depth={"2_InfiniteDepth": 2}, hardness={"0_ZConv2d": 1.0}, seconds=0.2),
    EpochEnd(epoch=0, step=23, seconds=0.4, train_loss=1.0, val_loss=0.9, train_accuracy=0.7, val_accuracy=0.8),
    Finished(_summary()),
    Stopped(_summary(status="stopped")),
    Failed("the loss exploded", "lower train.lr", 12, _summary(status="failed", message="m", hint="h")),
]


def _same(a, b) -> bool:
    """Equal, with NaN equal to NaN (dataclass == would say NaN != NaN)."""
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_crosses_the_link_unchanged(event):
    line = encode(event)
    assert line.endswith("\n") and line.count("\n") == 1
    assert _same(decode(line), event)


def test_only_registered_classes_are_built_from_a_line():
    with pytest.raises(ValueError, match="unknown event type 'os.system'"):
        decode('{"__type__": "os.system", "command": "true"}')

    @dataclasses.dataclass(frozen=True)
    class BoundaryGrid:  # what an emit hook (issue #13) might send
        step: int
        classes: tuple[int, ...]

    with pytest.raises(TypeError, match="not registered"):
        encode(BoundaryGrid(3, (0, 1)))
    register_event(BoundaryGrid)
    assert decode(encode(BoundaryGrid(3, (0, 1)))) == BoundaryGrid(3, (0, 1))


def _poll_until(server: EventServer, count: int) -> list:
    got: list = []
    deadline = time.monotonic() + HANG_S
    while len(got) < count and time.monotonic() < deadline:
        got.extend(server.poll(0.05))
    return got


def test_events_and_commands_flow_between_launcher_and_rank_0_and_strangers_are_ignored():
    server = EventServer()
    try:
        host, port = server.address.rsplit(":", 1)
        stranger = socket.create_connection((host, int(port)))
        stranger.sendall(b"AFWB-LINK/1 not-the-token\n" + encode(EVENTS[2]).encode())
        commands: list[str] = []
        got_stop = threading.Event()

        def on_command(name: str) -> None:
            commands.append(name)
            if name == "stop":
                got_stop.set()

        server.send("pause")  # before rank 0 connects: queued
        sender = EventSender(server.address, server.token, on_command)
        for event in EVENTS[:3]:
            sender.send(event)
        got = _poll_until(server, 3)
        assert [type(e).__name__ for e in got] == ["RunStarted", "Metrics", "EpochEnd"]  # the stranger's is not there
        assert server.connected.is_set()
        assert server.send("stop")
        assert got_stop.wait(HANG_S)
        assert commands == ["pause", "stop"]
        sender.close()
        stranger.close()
    finally:
        server.close()


def test_a_lost_launcher_stops_the_run():
    server = EventServer()
    stopped = threading.Event()
    sender = EventSender(server.address, server.token, lambda name: name == "stop" and stopped.set())
    _poll_until(server, 0)
    deadline = time.monotonic() + HANG_S
    while not server.connected.is_set() and time.monotonic() < deadline:
        server.poll(0.05)
    server.close()  # the launcher goes away while the run trains
    assert stopped.wait(HANG_S)
    sender.close()
