"""Training-device resolution: ``auto`` = CUDA, then Apple MPS, then CPU."""
from __future__ import annotations

import platform

import torch

__all__ = ["DeviceUnavailable", "resolve_device", "device_name", "available_devices", "visible_gpus"]


class DeviceUnavailable(RuntimeError):
    """The preset asks for a device this machine does not have."""

    def __init__(self, requested: str, hint: str) -> None:
        super().__init__(f"device '{requested}' is not available on this machine")
        self.requested = requested
        self.hint = hint


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The device kinds usable here, best first (always ends with ``cpu``)."""
    out = []
    if torch.cuda.is_available():
        out.append("cuda")
    if _mps_available():
        out.append("mps")
    out.append("cpu")
    return out


def visible_gpus() -> int:
    """How many CUDA GPUs PyTorch sees (what a DDP run on this machine can use, one per process)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(requested: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda|cuda:N|mps`` to a ``torch.device``; raise :class:`DeviceUnavailable` with a hint."""
    req = (requested or "auto").strip().lower()
    if req == "auto":
        return torch.device(available_devices()[0])
    if req == "cpu":
        return torch.device("cpu")
    if req.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailable(requested, "no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is "
                                               "False): set train.device to 'auto' or 'cpu' (--device cpu), or "
                                               "install a CUDA build of PyTorch")
        dev = torch.device(req)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailable(requested, f"only {torch.cuda.device_count()} CUDA device(s) present: "
                                               f"use cuda:0..cuda:{torch.cuda.device_count() - 1}")
        return dev
    if req == "mps":
        if not _mps_available():
            raise DeviceUnavailable(requested, "Apple MPS is not available: set train.device to 'auto' or 'cpu'")
        return torch.device("mps")
    raise DeviceUnavailable(requested, "use one of auto, cpu, cuda, cuda:N, mps")


def device_name(device: torch.device) -> str:
    """Human-readable name: the GPU model, 'Apple MPS', or the CPU model with its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    cpu = platform.processor() or platform.machine() or "CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu} ({torch.get_num_threads()} threads)"
