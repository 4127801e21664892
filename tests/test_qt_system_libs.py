"""tools/qt_system_libs.py, the check ``make run`` makes before opening the app (issue #11 item 13):
missing sonames from ldd's output, their Debian packages, the command it runs or prints, the
skips. ldd, apt-get and sudo are faked (a :class:`Sys` with recorded commands): nothing is
uninstalled or installed."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

import pytest

from tools.qt_system_libs import (Sys, check, debian_package, install_commands, missing_sonames, plugin_path,
                                  wants_xcb)

PLUGIN = Path("/venv/site-packages/PySide6/Qt/plugins/platforms/libqxcb.so")

# ldd on libqxcb.so of a minimal Debian 12 image (abridged): three libraries not found.
LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd6b5f2000)
\tlibQt6XcbQpa.so.6 => /venv/site-packages/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f2)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f3)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f4)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f5)
"""
LDD_COMPLETE = "\n".join(line for line in LDD_MISSING.splitlines() if "not found" not in line)
PACKAGES = ["libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"]


class FakeMachine:
    """Records commands; ldd answers LDD_MISSING until apt-get install succeeded."""

    def __init__(self, *, root: bool = False, tools: Sequence[str] = ("ldd", "apt-get", "sudo"),
                 env: dict | None = None, platform: str = "linux", apt_rc: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.installed = False
        self.apt_rc = apt_rc
        self.sys = Sys(env=env or {}, platform=platform, plugin=PLUGIN,
                       which=lambda name: f"/usr/bin/{name}" if name in tools else None, root=root,
                       run=self.run, run_shown=self.run_shown)

    def run(self, cmd: Sequence[str]) -> subprocess.CompletedProcess:
        self.commands.append(list(cmd))
        assert cmd[0] == "/usr/bin/ldd" and cmd[1] == str(PLUGIN)
        return subprocess.CompletedProcess(cmd, 0, LDD_COMPLETE if self.installed else LDD_MISSING, "")

    def run_shown(self, cmd: Sequence[str]) -> subprocess.CompletedProcess:
        self.commands.append(list(cmd))
        if "install" in cmd and "--simulate" not in cmd and self.apt_rc == 0:
            self.installed = True
        return subprocess.CompletedProcess(cmd, self.apt_rc if "apt-get" in cmd else 0, None, None)


def test_missing_sonames_are_the_not_found_lines_once_each() -> None:
    assert missing_sonames(LDD_MISSING) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert missing_sonames(LDD_COMPLETE) == []


@pytest.mark.parametrize("soname, package", [
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),  # name ends in a digit: a hyphen
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libX11.so.6", "libx11-6"),
    ("libEGL.so.1", "libegl1"),
    ("libdbus-1.so.3", "libdbus-1-3"),
    ("libpcre2-8.so.0", "libpcre2-8-0"),
    ("libgcc_s.so.1", "libgcc-s1"),
    ("libglib-2.0.so.0", "libglib2.0-0"),  # exceptions to the rule
    ("libgthread-2.0.so.0", "libglib2.0-0"),
    ("libz.so.1", "zlib1g"),
    ("libm.so.6", "libc6"),
])
def test_debian_package_of_a_soname(soname: str, package: str) -> None:
    assert debian_package(soname) == package


def test_install_commands_use_sudo_unless_root() -> None:
    assert install_commands(["libxcb-icccm4"], root=False) == [
        ["sudo", "apt-get", "update"],
        ["sudo", "apt-get", "install", "-y", "--no-install-recommends", "libxcb-icccm4"]]
    assert install_commands(["a", "b"], root=True, dry_run=True) == [
        ["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "--simulate", "a", "b"]]


@pytest.mark.parametrize("env, platform, expected", [
    ({}, "linux", True),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux", True),
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
    ({"QT_QPA_PLATFORM": "wayland"}, "linux", False),
    ({}, "darwin", False),
    ({}, "win32", False),
])
def test_the_check_runs_only_where_qt_would_load_xcb(env: dict, platform: str, expected: bool) -> None:
    assert wants_xcb(env, platform) is expected
    machine = FakeMachine(env=env, platform=platform)
    outcome = check(machine.sys, install=True)
    assert (machine.commands != []) is expected
    if not expected:
        assert outcome.code == 0 and outcome.message == ""


def test_nothing_missing_nothing_done() -> None:
    machine = FakeMachine()
    machine.installed = True
    outcome = check(machine.sys, install=True)
    assert outcome.code == 0 and outcome.message == ""
    assert [c[0] for c in machine.commands] == ["/usr/bin/ldd"]


def test_without_install_it_prints_the_exact_command_and_fails() -> None:
    machine = FakeMachine()
    outcome = check(machine.sys)
    assert outcome.code == 1
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libxcb-keysyms.so.1" in outcome.message
    assert ("sudo apt-get update && sudo apt-get install -y --no-install-recommends "
            "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1") in outcome.message
    assert len(machine.commands) == 1  # ldd only


@pytest.mark.parametrize("root", [True, False])
def test_install_runs_apt_get_then_checks_again(root: bool) -> None:
    machine = FakeMachine(root=root)
    outcome = check(machine.sys, install=True)
    sudo = [] if root else ["sudo"]
    assert machine.commands[1:3] == [[*sudo, "apt-get", "update"],
                                     [*sudo, "apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]]
    assert machine.commands[3][0] == "/usr/bin/ldd"
    assert outcome.code == 0


def test_dry_run_simulates_and_installs_nothing() -> None:
    machine = FakeMachine(root=True)
    outcome = check(machine.sys, install=True, dry_run=True)
    assert "--simulate" in machine.commands[2] and not machine.installed
    assert outcome.code == 0 and "nothing installed" in outcome.message


def test_a_failed_apt_get_stops_with_the_command_to_run() -> None:
    machine = FakeMachine(apt_rc=100)  # e.g. no network
    outcome = check(machine.sys, install=True)
    assert outcome.code == 1
    assert "`sudo apt-get update` failed" in outcome.message
    assert "sudo apt-get update && sudo apt-get install -y --no-install-recommends " + " ".join(PACKAGES) \
        in outcome.message
    assert len(machine.commands) == 2  # ldd, then the update that failed


def test_not_root_and_no_sudo_prints_the_command_for_root() -> None:
    machine = FakeMachine(root=False, tools=("ldd", "apt-get"))
    outcome = check(machine.sys, install=True)
    assert outcome.code == 1
    assert "apt-get update && apt-get install -y --no-install-recommends " + " ".join(PACKAGES) in outcome.message
    assert "sudo apt-get" not in outcome.message
    assert len(machine.commands) == 1


def test_not_debian_names_the_missing_files_and_installs_nothing() -> None:
    machine = FakeMachine(tools=("ldd", "sudo"))  # no apt-get: Fedora, Arch, ...
    outcome = check(machine.sys, install=True)
    assert outcome.code == 1
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libxcb-keysyms.so.1" in outcome.message
    assert "package manager" in outcome.message
    assert len(machine.commands) == 1


def test_a_broken_pyside6_install_is_not_sent_to_apt() -> None:
    machine = FakeMachine()
    machine.run = lambda cmd: subprocess.CompletedProcess(  # type: ignore[method-assign]
        cmd, 0, "\tlibQt6XcbQpa.so.6 => not found\n\tlibxcb-icccm.so.4 => not found\n", "")
    machine.sys.run = machine.run
    outcome = check(machine.sys, install=True)
    assert outcome.code == 1 and "libQt6XcbQpa.so.6" in outcome.message and "make clean-venv" in outcome.message


@pytest.mark.skipif(not wants_xcb({}, __import__("sys").platform), reason="PySide6 ships libqxcb.so on Linux only")
def test_the_real_plugin_is_found() -> None:
    path = plugin_path()
    assert path is not None and path.name == "libqxcb.so" and path.is_file()
