"""Check that Qt's xcb platform plugin can load its system libraries; install what is missing.

    python tools/qt_system_libs.py [--install] [--dry-run]

``make run`` calls it (with ``--install``) before opening the app. PySide6's wheels bring Qt
itself but not the X11/xcb libraries of the system; a minimal Debian or Ubuntu image lacks some
(libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, ...) and the app then stops before its window
opens with Qt's "Could not load the Qt platform plugin "xcb"".

What it does, on Linux when Qt would use xcb (``QT_QPA_PLATFORM`` unset or naming xcb):

1. ``ldd`` on PySide6's ``Qt/plugins/platforms/libqxcb.so`` lists every library the plugin needs,
   directly or through Qt's own libraries; the ones marked "not found" are missing.
2. Each missing library file (soname) is mapped to the Debian/Ubuntu package that ships it
   (:func:`debian_package`).
3. With ``--install`` on a Debian-like system (``apt-get`` present), as root or through ``sudo``:
   ``apt-get update`` then ``apt-get install -y --no-install-recommends PACKAGES`` (``--dry-run``
   passes ``--simulate``: nothing is installed), then ``ldd`` again.
4. Otherwise, or when that fails (no network, refused), it prints the exact command to run and
   exits 1; on a system without apt it names the missing library files.

Skipped (exit 0): macOS and Windows, ``QT_QPA_PLATFORM`` set to a platform other than xcb
(offscreen, wayland, ...), PySide6 or ``ldd`` not found. It does not import Qt.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

__all__ = ["Outcome", "Sys", "check", "debian_package", "install_commands", "main", "missing_sonames",
           "plugin_path", "wants_xcb"]

#: Libraries whose Debian package name does not follow the soname rule of :func:`debian_package`.
SPECIAL_PACKAGES: dict[str, str] = {
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libgio-2.0.so.0": "libglib2.0-0",
    "libgmodule-2.0.so.0": "libglib2.0-0",
    "libc.so.6": "libc6",
    "libm.so.6": "libc6",
    "libdl.so.2": "libc6",
    "libpthread.so.0": "libc6",
    "librt.so.1": "libc6",
    "libz.so.1": "zlib1g",
    "libGLdispatch.so.0": "libglvnd0",
    "libbrotlicommon.so.1": "libbrotli1",
    "libbrotlidec.so.1": "libbrotli1",
    "libbrotlienc.so.1": "libbrotli1",
}

#: Libraries that PySide6's wheel ships itself (Qt, ICU, PySide/shiboken): missing, the wheel is broken.
BUNDLED = re.compile(r"^lib(Qt6|icu|pyside6|shiboken6)")

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")
_SONAME = re.compile(r"^(lib.+?)\.so\.(\d+)(?:\.\d+)*$")


def missing_sonames(ldd_output: str) -> list[str]:
    """The library files ``ldd`` marked "not found", sorted, each once."""
    found = {m.group(1) for line in ldd_output.splitlines() if (m := _NOT_FOUND.match(line))}
    return sorted(found)


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname``.

    Debian's library packaging policy names the package after the soname: ``libNAME.so.N`` is in
    ``libNAMEN``, with a hyphen before N when NAME ends in a digit (``libxkbcommon-x11.so.0`` →
    ``libxkbcommon-x11-0``), lower case and ``_`` as ``-`` (``libX11.so.6`` → ``libx11-6``,
    ``libgcc_s.so.1`` → ``libgcc-s1``). :data:`SPECIAL_PACKAGES` lists the exceptions (glib, zlib,
    ...).
    """
    if soname in SPECIAL_PACKAGES:
        return SPECIAL_PACKAGES[soname]
    m = _SONAME.match(soname)
    if m is None:  # not a versioned shared library name: the best guess is its stem
        return soname.split(".so")[0].lower().replace("_", "-")
    name, major = m.group(1).lower().replace("_", "-"), m.group(2)
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


def install_commands(packages: Sequence[str], *, root: bool, dry_run: bool = False) -> list[list[str]]:
    """``apt-get update`` and ``apt-get install`` of ``packages`` (through sudo unless ``root``)."""
    sudo = [] if root else ["sudo"]
    install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends"]
    if dry_run:
        install.append("--simulate")
    return [[*sudo, "apt-get", "update"], [*install, *packages]]


def wants_xcb(env: Mapping[str, str], platform: str) -> bool:
    """Whether Qt would load its xcb plugin: on Linux, unless ``QT_QPA_PLATFORM`` names only other
    platforms (``offscreen``, ``wayland``, ...; a list like ``wayland;xcb`` falls back to xcb)."""
    if not platform.startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if not chosen:
        return True
    return any(p.split(":", 1)[0].strip() == "xcb" for p in chosen.split(";"))


def plugin_path() -> Path | None:
    """PySide6's ``libqxcb.so`` (found without importing PySide6), or None."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        path = Path(base) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if path.exists():
            return path
    return None


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(cmd: Sequence[str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def _run_shown(cmd: Sequence[str]) -> "subprocess.CompletedProcess[str]":
    """Run with the output on the terminal (apt's progress, sudo's password prompt)."""
    print("+ " + shlex.join(cmd), flush=True)
    return subprocess.run(list(cmd), text=True, check=False)


@dataclass
class Sys:
    """What :func:`check` needs to know about the machine and how it runs commands (tests fake it)."""

    env: Mapping[str, str]
    platform: str
    plugin: Path | None
    which: Callable[[str], str | None]
    root: bool
    run: Runner = _run
    run_shown: Runner = _run_shown

    @classmethod
    def here(cls) -> "Sys":
        geteuid = getattr(os, "geteuid", None)
        return cls(os.environ, sys.platform, plugin_path(), shutil.which, bool(geteuid and geteuid() == 0))


@dataclass
class Outcome:
    """The result: ``code`` (0 ready or skipped, 1 missing libraries left) and what to print."""

    code: int
    message: str


def _ldd_missing(machine: Sys, ldd: str) -> list[str]:
    return missing_sonames(machine.run([ldd, str(machine.plugin)]).stdout)


def check(machine: Sys, *, install: bool = False, dry_run: bool = False) -> Outcome:
    """Find the system libraries Qt's xcb plugin lacks and, with ``install``, install them."""
    if not wants_xcb(machine.env, machine.platform):
        return Outcome(0, "")
    ldd = machine.which("ldd")
    if machine.plugin is None or ldd is None:
        return Outcome(0, "Qt system libraries not checked (PySide6's xcb plugin or ldd not found)")
    missing = _ldd_missing(machine, ldd)
    if not missing:
        return Outcome(0, "")
    bundled = [s for s in missing if BUNDLED.match(s)]
    if bundled:
        return Outcome(1, f"PySide6's own libraries are missing ({', '.join(bundled)}): its install is broken. "
                          "Reinstall it: make clean-venv && make run")
    packages = sorted({debian_package(s) for s in missing})
    head = (f"Qt's xcb platform plugin ({machine.plugin.name}) cannot load these system libraries: "
            f"{', '.join(missing)}.")
    apt = machine.which("apt-get") is not None
    if not apt:
        return Outcome(1, f"{head}\nInstall the packages that provide them with your system's package manager "
                          f"(on Debian/Ubuntu: {shlex.join(install_commands(packages, root=False)[1])}), "
                          "then run the app again.")
    manual = " && ".join(shlex.join(c) for c in install_commands(packages, root=machine.root))
    if not install:
        return Outcome(1, f"{head}\nInstall them with:\n  {manual}\nthen run the app again.")
    if not machine.root and machine.which("sudo") is None:
        as_root = " && ".join(shlex.join(c) for c in install_commands(packages, root=True))
        return Outcome(1, f"{head}\nYou are not root and sudo is not available; as root, run:\n  {as_root}\n"
                          "then run the app again.")
    commands = install_commands(packages, root=machine.root, dry_run=dry_run)
    print(f"{head}\nInstalling the Debian packages {', '.join(packages)}:", flush=True)
    for cmd in commands:
        if machine.run_shown(cmd).returncode != 0:
            return Outcome(1, f"`{shlex.join(cmd)}` failed (see above: no network, no permission?).\n"
                              f"Install the libraries yourself with:\n  {manual}\nthen run the app again.")
    if dry_run:
        return Outcome(0, f"apt-get found every package ({', '.join(packages)}); --dry-run: nothing installed.")
    still = _ldd_missing(machine, ldd)
    if still:
        return Outcome(1, f"Still missing after the install: {', '.join(still)}.\n"
                          "Find the packages that provide them (apt-file search FILE) and install those.")
    return Outcome(0, "Qt's system libraries are installed.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install", action="store_true", help="install what is missing with apt-get")
    parser.add_argument("--dry-run", action="store_true", help="with --install: apt-get --simulate only")
    args = parser.parse_args(argv)
    outcome = check(Sys.here(), install=args.install, dry_run=args.dry_run)
    if outcome.message:
        print(outcome.message, file=sys.stderr if outcome.code else sys.stdout)
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
