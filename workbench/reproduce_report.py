"""Published vs measured: compare a reproduction's ``results.json`` with the protocols' figures and
write the Markdown report and its figures (PNG, matplotlib's Agg renderer, no display).

:func:`compare` is pure (results in, rows out) so the table, the verdicts and the figures can be
checked on tiny hand-made results. How a measured figure is formed from runs:

* runs are grouped by grid point; at each point the figure's statistic is averaged over the seeds
  (mean ± sample standard deviation when there are two or more);
* a figure pinned with ``at`` uses the points with those values; over the other (``best``) axes the
  point with the highest mean best-epoch accuracy is taken, as the source chose its best lr;
* ``best``: the best validation (= published test split) accuracy over epochs, in %; ``final``: the
  last epoch's; ``at_epoch``: after that epoch; ``w``: the layer's learned w at the end; ``depth``: ⌈w⌉.

Verdicts: *reproduced* when the measured value is within the figure's tolerance (for accuracy, not
lower than published − tolerance; higher counts as reproduced), *missed* otherwise, *not run* /
*not measured* with the reason. A run that a budget shortened says so beside its verdict.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .fileio import atomic_write_text
from .protocol import METRICS, PublishedFigure, reproduction_from_dict

__all__ = ["Measured", "FigureRow", "compare", "render_figures", "render_markdown", "write_report",
           "FIGURES_MISSING"]

FIGURES_MISSING = ("figures not drawn: matplotlib is not installed "
                   "(pip install 'activation-free-workbench[reproduce]' or pip install matplotlib)")


@dataclass
class Measured:
    """A measured figure: mean (and sd over ``n`` seeds) at the chosen grid ``point``; ``final`` is
    the last-epoch accuracy at the same point for a ``best`` accuracy figure; ``why`` explains None."""

    value: float | None = None
    sd: float | None = None
    n: int = 0
    final: float | None = None
    final_sd: float | None = None
    point: dict[str, Any] = field(default_factory=dict)
    why: str = ""


@dataclass
class FigureRow:
    """One published figure beside its measurement, with the experiment's context."""

    key: str
    name: str
    figure: PublishedFigure
    measured: Measured
    verdict: str
    reproduced: bool | None
    protocol: str
    device: str
    wall_s: float
    source: str


# ------------------------------------------------------------------------------------------ compare
def _rows_by_point(rows: Sequence[Mapping[str, Any]]) -> dict[tuple, list[Mapping[str, Any]]]:
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        key = tuple(sorted((k, repr(v)) for k, v in dict(row.get("point", {})).items()))
        groups.setdefault(key, []).append(row)
    return groups


def _row_value(row: Mapping[str, Any], fig: PublishedFigure) -> float | None:
    if fig.metric == "accuracy":
        if fig.statistic == "best":
            return row.get("best_accuracy")
        if fig.statistic == "final":
            return row.get("final_accuracy")
        return (row.get("at_epoch") or {}).get(str(fig.epoch))
    ws = row.get("w") or []
    index = fig.depth_layer or 0
    if index >= len(ws) or ws[index] is None:
        return None
    w = float(ws[index])
    return w if fig.metric == "w" else float(max(0, math.ceil(w)))


def _mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def _usable(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if r.get("status") in ("finished", "stopped", "diverged")]


def _select_point(groups: dict[tuple, list[Mapping[str, Any]]], at: Mapping[str, Any]) -> tuple | None:
    """The grid point matching ``at`` with the highest mean best-epoch accuracy (the first if none)."""
    best_key, best_score = None, -math.inf
    for key, rows in groups.items():
        point = dict(rows[0].get("point", {}))
        if any(path not in point or point[path] != value for path, value in at.items()):
            continue
        scores = [r["best_accuracy"] for r in _usable(rows) if r.get("best_accuracy") is not None]
        score = statistics.fmean(scores) if scores else -math.inf
        if best_key is None or score > best_score:
            best_key, best_score = key, score
    return best_key


def measure(rows: Sequence[Mapping[str, Any]], fig: PublishedFigure) -> Measured:
    """The measured counterpart of ``fig`` from one experiment's rows (see the module docstring)."""
    groups = _rows_by_point(rows)
    key = _select_point(groups, fig.at)
    if key is None:
        return Measured(why="no run at this grid point")
    at_point = groups[key]
    usable = _usable(at_point)
    out = Measured(point=dict(at_point[0].get("point", {})))
    if not usable:
        statuses = sorted({str(r.get("status")) for r in at_point})
        messages = [str(r.get("message", "")) for r in at_point if r.get("message")]
        out.why = ", ".join(statuses) + (f": {messages[0]}" if messages else "")
        return out
    values = [v for v in (_row_value(r, fig) for r in usable) if v is not None]
    out.n = len(values)
    out.value, out.sd = _mean_sd(values)
    if out.value is None:
        if fig.statistic == "at_epoch":
            reached = max(int(r.get("epochs") or 0) for r in usable)
            out.why = f"epoch {fig.epoch} not reached ({reached} epochs run)"
        else:
            out.why = "the runs report no such figure"
    if fig.metric == "accuracy" and fig.statistic == "best":
        finals = [r["final_accuracy"] for r in usable if r.get("final_accuracy") is not None]
        out.final, out.final_sd = _mean_sd(finals)
    return out


def _fmt(metric: str, value: float | None, sd: float | None = None) -> str:
    if value is None:
        return "—"
    unit = METRICS.get(metric, ("",))[0]
    digits = 2 if metric in ("accuracy", "w") else 0
    text = f"{value:.{digits}f}"
    if sd is not None:
        text += f" ± {sd:.{digits}f}"
    if unit == "%":
        return text + " %"
    if unit == "layers" and sd is None and value == 1:
        return f"{text} layer"
    if unit:
        return f"{text} {unit}"
    return text


def _delta_unit(metric: str) -> str:
    return {"accuracy": " pp", "depth": " layer(s)"}.get(metric, "")


def verdict(fig: PublishedFigure, m: Measured, shortened: str = "") -> tuple[str, bool | None]:
    """(text, reproduced?) — ``None`` when nothing was measured or nothing was published."""
    if m.value is None:
        return f"not measured: {m.why}" if m.why else "not measured", None
    if not math.isfinite(float(fig.value)):
        return "nothing to compare: no published figure for this setting", None
    delta = m.value - float(fig.value)
    higher_is_better = METRICS.get(fig.metric, ("", 0.0, False))[2]
    band = fig.band
    ok = delta >= -band - 1e-9 if higher_is_better else abs(delta) <= band + 1e-9
    digits = 0 if fig.metric == "depth" else 2
    unit = _delta_unit(fig.metric)
    if ok:
        text = f"reproduced (Δ {delta:+.{digits}f}{unit}, tolerance ±{band:g})"
    else:
        text = f"missed by {abs(delta):.{digits}f}{unit} (tolerance ±{band:g})"
    if shortened:
        text += f"; shortened run: {shortened}"
    if not fig.verified:
        text += "; the published figure is unverified"
    return text, ok


def _statistic_text(fig: PublishedFigure, protocol: Mapping[str, Any]) -> str:
    grid_best = [a["path"] for a in protocol.get("grid", []) if a.get("report", "best") == "best"]
    over = f", best over the {', '.join(p.rsplit('.', 1)[-1] for p in grid_best)} grid" if grid_best else ""
    if fig.metric == "accuracy":
        what = {"best": "best epoch on the test set", "final": "final epoch",
                "at_epoch": f"after epoch {fig.epoch}"}.get(fig.statistic, fig.statistic)
    else:
        what = "end of training"
    return f"{what}{over}"


def protocol_text(exp: Mapping[str, Any]) -> str:
    """What was run: the grid, seeds, epochs and the budget's overrides, in a few words."""
    protocol = exp.get("protocol", {})
    parts = []
    narrowed = exp.get("budget_grid") or {}
    for axis in protocol.get("grid", []):
        values = narrowed.get(axis["path"], axis.get("values", []))
        name = axis["path"].rsplit(".", 1)[-1]
        if len(values) > 4:
            shown = f"{values[0]}…{values[-1]} ({len(values)} values)"
        else:
            shown = "{" + ", ".join(str(v) for v in values) + "}"
        if axis["path"] in narrowed:
            shown += f" of the source's {len(axis.get('values', []))}"
        parts.append(f"{name} ∈ {shown}" + (" each" if axis.get("report") == "each" else ""))
    seeds = protocol.get("seeds") or []
    if len(seeds) > 1:
        parts.append(f"{len(seeds)} seeds")
    overrides = exp.get("overrides") or {}
    if overrides:
        parts.append(f"{exp.get('budget')} budget: " + ", ".join(f"{k}={v}" for k, v in overrides.items()))
    elif exp.get("budget"):
        parts.append(f"{exp.get('budget')} budget, as published")
    return "; ".join(parts)


def _source_text(protocol: Mapping[str, Any]) -> str:
    src = protocol.get("source") or {}
    parts = [src.get("repository", ""), src.get("file", "")]
    text = " ".join(p for p in parts if p)
    if src.get("commit"):
        text += f" @ {src['commit']}"
    return text


def compare(results: Mapping[str, Any]) -> list[FigureRow]:
    """One row per published figure of every experiment in ``results`` (run or not)."""
    out: list[FigureRow] = []
    rows = list(results.get("rows", []))
    for exp in results.get("experiments", []):
        problems: list = []
        protocol = reproduction_from_dict(exp.get("protocol", {}), problems)
        if protocol is None:
            continue
        mine = [r for r in rows if r.get("key") == exp["key"]]
        devices = sorted({str(r.get("device_name") or r.get("device")) for r in mine if r.get("device")})
        wall = sum(float(r.get("wall_s") or 0.0) for r in mine)
        figures = list(protocol.published)
        if not figures:  # nothing to compare with: the measured accuracy is still reported
            figures = [PublishedFigure("accuracy", math.nan, statistic="best",
                                       note=protocol.note or "no published figure")]
        for fig in figures:
            if exp.get("skip"):
                m = Measured(why=exp["skip"])
                text = f"not run: {exp['skip']}"
                if exp.get("estimate"):
                    text += f" (estimate: {exp['estimate']})"
                ok = None
            elif not mine:
                m = Measured(why="not run yet")
                text, ok = "not run yet (stopped before it)", None
            else:
                m = measure(mine, fig)
                shortened = "" if fig.statistic == "at_epoch" else exp.get("shortened", "")
                text, ok = verdict(fig, m, shortened)
            fig_rows = [r for r in mine if all(r.get("point", {}).get(k) == v for k, v in fig.at.items())]
            out.append(FigureRow(
                key=exp["key"], name=exp.get("name", exp["key"]), figure=fig, measured=m, verdict=text,
                reproduced=ok, protocol=protocol_text(exp), device=", ".join(devices) or "—",
                wall_s=sum(float(r.get("wall_s") or 0.0) for r in fig_rows) if fig.at else wall,
                source=_source_text(exp.get("protocol", {}))))
    return out


# ------------------------------------------------------------------------------------------ figures
def _experiments_with_rows(results: Mapping[str, Any]) -> list[tuple[dict[str, Any], Any, list[Mapping[str, Any]]]]:
    out = []
    for exp in results.get("experiments", []):
        problems: list = []
        protocol = reproduction_from_dict(exp.get("protocol", {}), problems)
        if protocol is None:
            continue
        rows = [r for r in results.get("rows", []) if r.get("key") == exp["key"]]
        out.append((exp, protocol, rows))
    return out


def _figure_slug(text: str) -> str:
    return "".join(c if c.isalnum() or c == "-" else "-" for c in text.lower()).strip("-") or "figure"


def render_figures(results: Mapping[str, Any], folder: Path) -> list[tuple[str, Path]]:
    """Draw the report's figures into ``folder``; returns ``(caption, path)`` per PNG written.

    * per figure group (a protocol's ``figure``, else its key): validation accuracy (%) against
      epoch for the runs at the chosen grid point, the published curves dashed, the published
      best/final accuracy as dotted lines and at-epoch figures as markers;
    * per experiment with a per-value (``each``) grid axis: each published metric against the axis,
      measured (mean ± sd over seeds) beside published (the Going-Deeper w-vs-k plot), and the
      learned w per epoch for every value.
    Raises ImportError when matplotlib is missing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Path]] = []
    experiments = _experiments_with_rows(results)
    budget = results.get("budget", "")

    def new_axes(size: tuple[float, float]) -> tuple[Any, Any]:
        fig = Figure(figsize=size)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.grid(True, alpha=0.3)
        return fig, ax

    def save(fig: Any, name: str, caption: str) -> None:
        path = folder / f"{name}.png"
        tmp = folder / f".{name}.tmp.png"
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        tmp.replace(path)
        written.append((caption, path))

    # accuracy curves, grouped by the protocols' figure ids
    groups: dict[str, list[tuple[dict[str, Any], Any, list[Mapping[str, Any]]]]] = {}
    for exp, protocol, rows in experiments:
        sweep = any(a.report == "each" for a in protocol.grid)
        has_curve = any(pt.get("accuracy") is not None for r in _usable(rows) for pt in r.get("curve", []))
        if has_curve and (not sweep or any(c.metric == "accuracy" for c in protocol.curves)):
            groups.setdefault(protocol.figure or exp["key"], []).append((exp, protocol, rows))
    for group, members in groups.items():
        fig, ax = new_axes((7.5, 4.5))
        colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"])
        for exp, protocol, rows in members:
            colour = next(colours, "tab:gray")
            by_point = _rows_by_point(rows)
            key = _select_point(by_point, {})
            chosen = _usable(by_point[key]) if key is not None else []
            for i, row in enumerate(chosen):
                pts = [(pt["epoch"], pt["accuracy"]) for pt in row.get("curve", []) if pt.get("accuracy") is not None]
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, color=colour, linewidth=1.4, alpha=1.0 if len(chosen) == 1 else 0.7,
                            label=f"{exp['key']} measured ({row.get('label', '')})",
                            marker="o" if len(xs) < 30 else None, markersize=3)
            for curve in protocol.curves:
                if curve.metric == "accuracy" and curve.x == "epoch" and not curve.at:
                    xs, ys = zip(*curve.points())
                    ax.plot(xs, ys, color=colour, linestyle="--", linewidth=1.0,
                            label=f"{exp['key']} published: {curve.label}")
            for pub in protocol.published:
                if pub.metric != "accuracy" or pub.at:
                    continue
                if pub.statistic == "at_epoch":
                    ax.plot([pub.epoch], [pub.value], marker="D", color=colour, linestyle="none",
                            label=f"{exp['key']} published after epoch {pub.epoch}: {pub.value:g} %")
                else:
                    ax.axhline(pub.value, color=colour, linestyle=":", linewidth=1.0,
                               label=f"{exp['key']} published {pub.statistic}: {pub.value:g} %")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation (test-split) accuracy, %")
        ax.set_title(f"{group}: accuracy per epoch ({budget} budget)")
        _accuracy_limits(ax)
        ax.legend(fontsize=7, loc="best")
        names = " vs ".join(exp["key"] for exp, _, _ in members)
        save(fig, f"{_figure_slug(group)}-accuracy", f"Accuracy per epoch: {names}")

    # sweeps: measured vs published over a per-value axis, and w per epoch for each value
    for exp, protocol, rows in experiments:
        each = [a for a in protocol.grid if a.report == "each"]
        if not each or not _usable(rows):
            continue
        axis = each[0]
        short = axis.path.rsplit(".", 1)[-1]
        shortened = f", shortened: {exp['shortened']}" if exp.get("shortened") else ""
        for metric in sorted({f.metric for f in protocol.published if axis.path in f.at}):
            figs = [f for f in protocol.published if f.metric == metric and axis.path in f.at]
            fig, ax = new_axes((6.5, 4.2))
            xs, means, sds = [], [], []
            for value in axis.values:
                template = next((f for f in figs if f.at.get(axis.path) == value), figs[0])
                probe = PublishedFigure(metric=metric, statistic=template.statistic, epoch=template.epoch,
                                        depth_layer=template.depth_layer, at={axis.path: value})
                m = measure(rows, probe)
                if m.value is not None:
                    xs.append(value)
                    means.append(m.value)
                    sds.append(m.sd or 0.0)
            if xs:
                ax.plot(xs, means, marker="o", color="tab:blue", label="measured (this project)")
                if any(sds):
                    ax.errorbar(xs, means, yerr=sds, fmt="none", ecolor="tab:blue", capsize=3)
            ax.plot([f.at[axis.path] for f in figs], [f.value for f in figs], marker="s", linestyle="--",
                    color="tab:orange", label=f"published ({_source_text(exp.get('protocol', {})) or 'source'})")
            unit = METRICS.get(metric, ("",))[0]
            ax.set_xlabel(short)
            ax.set_ylabel(metric + (f" ({unit})" if unit else ""))
            ax.set_title(f"{exp['key']}: {metric} against {short} ({budget} budget{shortened})", fontsize=9)
            ax.legend(fontsize=7)
            save(fig, f"{_figure_slug(exp['key'])}-{metric}-vs-{_figure_slug(short)}",
                 f"{exp['key']}: {metric} against {short}, measured beside published")
        trajectories = [(r, [(pt["step"], pt["w"][0]) for pt in r.get("curve", []) if pt.get("w")])
                        for r in _usable(rows)]
        trajectories = [(r, pts) for r, pts in trajectories if pts]
        if trajectories:
            from matplotlib import colormaps

            fig, ax = new_axes((7.5, 4.5))
            cmap = colormaps["viridis"]
            n = max(1, len(axis.values) - 1)
            colour_of = {repr(v): cmap(i / n) for i, v in enumerate(axis.values)}
            for r, pts in trajectories:
                xs, ys = zip(*pts)
                colour = colour_of.get(repr(r.get("point", {}).get(axis.path)), "tab:gray")
                ax.plot(xs, ys, linewidth=1.3, color=colour, label=f"{r.get('label', '')}")
            for curve in protocol.curves:
                if curve.metric == "w" and curve.x == "step" and axis.path in curve.at:
                    xs, ys = zip(*curve.points())
                    ax.plot(xs, ys, linewidth=0.9, linestyle="--",
                            color=colour_of.get(repr(curve.at[axis.path]), "tab:gray"),
                            label=f"published {short}={curve.at[axis.path]}")
            ax.set_xlabel("optimiser step")
            ax.set_ylabel("learned w (first InfiniteDepth layer)")
            ax.set_title(f"{exp['key']}: learned w during training, measured (solid) and published (dashed) "
                         f"({budget} budget{shortened})", fontsize=8)
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
            save(fig, f"{_figure_slug(exp['key'])}-w-per-step",
                 f"{exp['key']}: learned w during training, one line per run, the source's dashed")
    return written


def _accuracy_limits(ax: Any) -> None:
    """Zoom on the interesting part: from a little under the lowest late value to 100 %."""
    ys = [y for line in ax.get_lines() for y in line.get_ydata() if math.isfinite(float(y))]
    if not ys:
        return
    tail = sorted(ys)[len(ys) // 10:] or ys
    low = max(0.0, min(tail) - 2.0)
    ax.set_ylim(low, min(100.5, max(ys) + 0.5))


# ----------------------------------------------------------------------------------------- markdown
def _hms(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _measured_text(row: FigureRow) -> str:
    m, fig = row.measured, row.figure
    if m.value is None:
        return "—"
    point = ""
    best_axes = [k for k in m.point if k not in fig.at]
    if best_axes and fig.statistic == "best" or (best_axes and fig.metric == "accuracy"):
        point = " at " + ", ".join(f"{k.rsplit('.', 1)[-1]}={m.point[k]}" for k in best_axes)
    seeds = f" ({m.n} seeds)" if m.n > 1 else ""
    if fig.metric == "accuracy" and fig.statistic == "best":
        return f"best {_fmt('accuracy', m.value, m.sd)} · final {_fmt('accuracy', m.final, m.final_sd)}{point}{seeds}"
    if fig.metric == "accuracy" and fig.statistic == "at_epoch":
        return f"after epoch {fig.epoch}: {_fmt('accuracy', m.value, m.sd)}{point}{seeds}"
    if fig.metric == "accuracy":
        return f"final {_fmt('accuracy', m.value, m.sd)}{point}{seeds}"
    return f"{fig.metric} = {_fmt(fig.metric, m.value, m.sd)}{seeds}"


def _experiment_cell(row: FigureRow) -> str:
    text = row.key
    if row.figure.at:
        text += " (" + ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in row.figure.at.items()) + ")"
    if row.figure.depth_layer is not None:
        text += f", depth layer {row.figure.depth_layer + 1}"
    return text


def render_markdown(results: Mapping[str, Any], figures: Sequence[tuple[str, Path]], report_dir: Path,
                    figures_note: str = "", command: str = "") -> str:
    """The report's Markdown text (figures linked relative to ``report_dir``)."""
    rows = compare(results)
    machine = results.get("machine", {})
    commit = str(results.get("commit", "unknown"))
    commit_text = f"`{commit[:12]}`" + (" with uncommitted changes" if results.get("dirty") else "")
    devices = sorted({str(r.get("device_name") or r.get("device")) for r in results.get("rows", []) if r.get("device")})
    lines = [
        "# Reproduction: published vs measured",
        "",
        f"Written by `{command or 'python main.py reproduce'}` (budget **{results.get('budget', '?')}**, "
        f"started {results.get('started', '?')}, last updated {results.get('updated', '?')}).",
        "",
        f"- Commit: {commit_text}",
        f"- Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} logical cores, "
        f"torch {machine.get('torch', '?')} ({machine.get('torch_threads', '?')} threads), "
        f"Python {machine.get('python', '?')}" + (f", GPU {machine['gpu']}" if machine.get("gpu") else ""),
        f"- Devices used: {', '.join(devices) or 'none (nothing ran)'}",
        "",
        "Measured figures come from the runs listed at the end, made with the code at the commit above. "
        "Accuracy is on the validation split, which for MNIST, CIFAR-10 and the checkerboard is the "
        "published test split; *best* is the best epoch chosen on that split, as the sources did. "
        "See [how figures are formed](#how-the-figures-are-formed).",
        "",
        "## Published vs measured",
        "",
        "| Experiment | Protocol | Device | Wall time | Measured | Published | Verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    exps = {e["key"]: e for e in results.get("experiments", [])}
    for row in rows:
        fig = row.figure
        stat = _statistic_text(fig, exps.get(row.key, {}).get("protocol", {}))
        published = f"{_fmt(fig.metric, fig.value)} ({stat})" if math.isfinite(fig.value) else "none"
        if not fig.verified:
            published += " — unverified"
        lines.append("| " + " | ".join(_cell(c) for c in (
            _experiment_cell(row), row.protocol, row.device, _hms(row.wall_s) if row.wall_s else "—",
            _measured_text(row), published, row.verdict)) + " |")
    skipped = [e for e in results.get("experiments", []) if e.get("skip")]
    if skipped:
        lines += ["", "## Not run under this budget", "",
                  "| Experiment | Why | Estimate | Command |", "|---|---|---|---|"]
        for e in skipped:
            lines.append("| " + " | ".join(_cell(c) for c in (
                e["key"], e["skip"], e.get("estimate") or "—",
                f"`python main.py reproduce {e['key']} --budget full`")) + " |")
    lines += ["", "## Figures", ""]
    if figures:
        for caption, path in figures:
            rel = Path(path).resolve().relative_to(Path(report_dir).resolve()) \
                if Path(path).resolve().is_relative_to(Path(report_dir).resolve()) else Path(path)
            lines += [f"**{caption}**", "", f"![{caption}]({rel.as_posix()})", ""]
    else:
        lines += [figures_note or "No figure: no run produced a curve or a sweep yet.", ""]
    notes = [(e["key"], e.get("protocol", {}).get("note", ""), e.get("protocol", {}).get("published", []))
             for e in results.get("experiments", [])]
    notes = [(k, n, [p for p in pubs if p.get("note")]) for k, n, pubs in notes]
    if any(n or pubs for _, n, pubs in notes):
        lines += ["## Notes on the protocols", ""]
        for key, note, pubs in notes:
            if note:
                lines.append(f"- **{key}**: {note}")
            for p in pubs:
                lines.append(f"- **{key}**, {p.get('metric')} {p.get('value')}: {p['note']}")
        lines.append("")
    lines += ["## Runs", "", "| Experiment | Run | Status | Device | Wall time | Epochs | Steps | Best | Final | w |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results.get("rows", []):
        ws = ", ".join(f"{w:.2f}" for w in r.get("w") or [])
        best = _fmt("accuracy", r.get("best_accuracy"))
        if r.get("best_epoch"):
            best += f" (epoch {r['best_epoch']})"
        status = str(r.get("status", "?"))
        if r.get("message") and status != "finished":
            status += f": {r['message']}"
        lines.append("| " + " | ".join(_cell(c) for c in (
            r.get("key"), r.get("label"), status, r.get("device_name") or r.get("device") or "—",
            _hms(r["wall_s"]) if r.get("wall_s") else "—", f"{r.get('epochs', 0)} / {r.get('planned_epochs', '?')}",
            f"{r.get('steps', 0):,}", best, _fmt("accuracy", r.get("final_accuracy")), ws or "—")) + " |")
    lines += ["", "## How the figures are formed", "",
              "- Runs are grouped by grid point; a figure is the mean over seeds at a point "
              "(± the sample standard deviation when there are two or more seeds).",
              "- Over an axis the source reported the best of (an lr grid), the point with the highest mean "
              "best-epoch accuracy is shown; a figure pinned to a point (a sweep) uses that point.",
              "- *reproduced*: within the figure's tolerance (for accuracy: not more than the tolerance "
              "below the published value); *missed*: outside it; *shortened run*: the budget ran fewer "
              "epochs or samples than the source, so the comparison is indicative only.",
              ""]
    return "\n".join(lines)


def write_report(results: Mapping[str, Any], report: Path, command: str = "") -> list[tuple[str, Path]]:
    """Write the Markdown report to ``report`` and its figures into ``<report folder>/<report stem>/``;
    returns the figures written (none, with a note in the report, when matplotlib is missing)."""
    report = Path(report)
    folder = report.parent / report.stem
    note = ""
    try:
        figures = render_figures(results, folder)
    except ImportError:
        figures, note = [], FIGURES_MISSING
    atomic_write_text(report, render_markdown(results, figures, report.parent, note, command))
    return figures
