"""Activation-Free Workbench entry point.

``python main.py``                       opens the desktop app;
``python main.py train|eval|export|presets|runs|reproduce ...``  runs the headless command line.

This file stays thin: the app lives in ``ui/``, the command line in ``workbench/cli.py``.
"""
from __future__ import annotations

import sys

CLI_COMMANDS = frozenset({"train", "eval", "export", "presets", "runs", "reproduce", "-h", "--help"})


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in CLI_COMMANDS:
        from workbench.cli import main as cli_main

        return cli_main(args)
    from ui.app import main as app_main

    return app_main(args)


if __name__ == "__main__":
    sys.exit(main())
