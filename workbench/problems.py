"""What is wrong with something a user wrote, and how to fix it: :class:`Problem`, :class:`SpecError`
and the "did you mean" helpers.

This module imports nothing of the project, so every other module (the preset format, the layer and
dataset registries, the loaders) can report problems without importing each other.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["Problem", "SpecError", "closest", "did_you_mean", "unknown_key_problem", "shown_value"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a preset: where (a JSON path such as ``model.layers[3].params.routes``),
    what (``message``) and how to fix it (``fix``, may be empty)."""

    path: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        tail = f"; {self.fix}" if self.fix else ""
        return f"{where}{self.message}{tail}"


class SpecError(ValueError):
    """A user-caused problem with a preset; ``problems`` lists every one, ``str(e)`` one line each."""

    def __init__(self, problems: Problem | str | Sequence[Problem], fix: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems, fix)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid preset")


def closest(word: Any, options: Sequence[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """Up to ``n`` of ``options`` that look like ``word`` (difflib's ratio ≥ ``cutoff``), best first."""
    return difflib.get_close_matches(str(word), list(options), n=n, cutoff=cutoff)


def did_you_mean(word: Any, options: Sequence[str], *, known: str = "known", cutoff: float = 0.5) -> str:
    """``did you mean 'a' or 'b'?`` for the options closest to ``word``, else ``<known>: a, b, …``."""
    close = closest(word, options, cutoff=cutoff)
    if close:
        return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    return f"{known}: " + ", ".join(str(o) for o in options)


def unknown_key_problem(path: str, key: Any, known: Sequence[str], *, kind: str, owner: str,
                        where: str | None = None) -> Problem:
    """``unknown <kind> '<key>' for <where>`` with a fix naming the closest known keys, or all of them
    (``<owner> takes: …``), or saying that ``owner`` takes none. ``where`` defaults to ``owner``."""
    close = closest(str(key), known, n=2)
    if close:
        fix = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    elif known:
        fix = f"{owner} takes: " + ", ".join(known)
    else:
        fix = f"{owner} takes no {kind}s; remove it"
    return Problem(path, f"unknown {kind} '{key}' for {where or owner}", fix)


def shown_value(value: Any, limit: int = 40) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters; a huge integer by its digit count."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        try:
            return f"a {len(str(abs(value)))}-digit number"
        except ValueError:  # beyond Python's int-to-text limit
            return f"a number of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
