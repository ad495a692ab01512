"""The replay's chart (matplotlib, headless Agg): per rule, the value it measured over time
with its threshold, and every incident it would have opened as a band: the dwell (`for`)
before it opened, open, and the `clear_after` wait before it closed. A first panel counts
persons and vehicles per zone.

Returns where each rule's threshold line landed in the PNG's pixels, so a test (or a person's
tool) can check the picture against the rule rather than trust it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pantau.replay import ReplayReport, RuleReport

THRESHOLD_COLOR = "#e8393a"
BAND = {"dwell": "#f4b400", "open": "#e8393a", "clear": "#8a9bb0", "cooldown": "#6a4c93"}


def _values(report: ReplayReport, name: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for t, v in zip(report.times, report.series.get(name, []), strict=False):
        if v is not None:
            xs.append(t)
            ys.append(v)
    return xs, ys


def _bands(ax: Any, rule: RuleReport, end_s: float) -> None:
    for inc in rule.incidents:
        closed = inc.closed_s if inc.closed_s is not None else end_s
        ax.axvspan(inc.started_s, inc.opened_s, color=BAND["dwell"], alpha=0.25, lw=0)
        open_until = closed - rule.clear_after_s if inc.closed_s is not None else closed
        ax.axvspan(inc.opened_s, max(inc.opened_s, open_until), color=BAND["open"], alpha=0.2, lw=0)
        if inc.closed_s is not None:
            ax.axvspan(max(inc.opened_s, open_until), closed, color=BAND["clear"], alpha=0.3, lw=0)
            if rule.cooldown_s > 0:  # why a condition that holds again opens nothing yet
                ax.axvspan(
                    closed,
                    min(end_s, closed + rule.cooldown_s),
                    facecolor="none",
                    edgecolor=BAND["cooldown"],
                    hatch="//",
                    alpha=0.35,
                    lw=0,
                )


def draw(report: ReplayReport, path: Path, title: str | None = None) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    zones = sorted({n.split(".")[1] for n in report.series if n.startswith("zone.")})
    panels = len(report.rules) + (1 if zones else 0)
    dpi = 90
    fig, grid = plt.subplots(max(panels, 1), 1, figsize=(12, 2.6 * max(panels, 1) + 0.6),
                             sharex=True, squeeze=False, dpi=dpi)  # fmt: skip
    axes = [row[0] for row in grid]
    end_s = report.duration_s
    row = 0
    if zones:
        ax = axes[0]
        for zone in zones:
            for what, style in (("persons", "-"), ("vehicles", "--")):
                xs, ys = _values(report, f"zone.{zone}.{what}")
                if ys and max(ys) > 0:
                    ax.step(xs, ys, style, where="post", label=f"{zone}: {what}")
        ax.set_ylabel("objects in zone")
        ax.legend(fontsize=8, loc="upper left", ncol=4)
        ax.grid(alpha=0.3)
        row = 1
    marks: dict[str, Any] = {}
    for rule in report.rules:
        ax = axes[row]
        row += 1
        name = rule.key if rule.type != "tamper" else "tamper.similarity"
        xs, ys = _values(report, name)
        ax.step(xs, ys, where="post", color="#1f6fb4", label=rule.measure)
        ax.axhline(rule.threshold, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.6,
                   label=f"threshold {rule.threshold:g}")  # fmt: skip
        if rule.type == "traffic":
            sx, sy = _values(report, f"{rule.key}.speed")
            if sy:
                twin = ax.twinx()
                twin.plot(sx, sy, color="#7a7a7a", linewidth=0.8, label="median speed")
                twin.set_ylabel("speed (box h/s)", fontsize=8)
        if rule.type == "tamper":  # the other scores: the scene's shift and the sharpness
            sx, sy = _values(report, "tamper.shift")
            if sy:
                twin = ax.twinx()
                twin.plot(sx, sy, color="#7a7a7a", linewidth=0.8, label="shift (share of width)")
                twin.set_ylabel("shift", fontsize=8)
                twin.set_ylim(0, max(max(sy), 0.1) * 1.3)
        _bands(ax, rule, end_s)
        where = f" in {rule.zone}" if rule.zone else ""
        ax.set_title(f"{rule.key}: {rule.type}{where}, for {rule.for_s:g} s, clear after "
                     f"{rule.clear_after_s:g} s, cooldown {rule.cooldown_s:g} s: "
                     f"{len(rule.incidents)} incident(s)", fontsize=10, loc="left")  # fmt: skip
        top = max([*ys, rule.threshold]) if ys else rule.threshold
        ax.set_ylim(min(0.0, *(ys or [0.0])), top * 1.25 + (0.05 if top < 2 else 1))
        ax.grid(alpha=0.3)
        handles = ax.get_legend_handles_labels()[0] + [
            Patch(color=BAND["dwell"], alpha=0.4, label="for (dwell)"),
            Patch(color=BAND["open"], alpha=0.3, label="incident open"),
            Patch(color=BAND["clear"], alpha=0.4, label="clear_after"),
            Patch(facecolor="none", edgecolor=BAND["cooldown"], hatch="//", label="cooldown"),
        ]
        ax.legend(handles=handles, fontsize=8, loc="upper left", ncol=6)
        marks[rule.key] = ax
    axes[-1].set_xlabel("seconds into the video")
    axes[-1].set_xlim(0, max(end_s, 1.0))
    fig.suptitle(title or f"{report.camera_id}: {report.source} ({report.frames} frames analysed, "
                 f"{report.speed:.1f}x real time)", fontsize=11)  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    # Where each threshold line is in the saved picture (origin top left, in pixels).
    height = fig.get_size_inches()[1] * dpi
    scale = 1.0
    out: dict[str, Any] = {}
    for key, ax in marks.items():
        rule = next(r for r in report.rules if r.key == key)
        x0, _ = ax.transData.transform((0, rule.threshold))
        x1, y = ax.transData.transform((max(end_s, 1.0), rule.threshold))
        out[key] = {"row": round(height - y * scale), "x0": round(x0 * scale),
                    "x1": round(x1 * scale)}  # fmt: skip
    plt.close(fig)
    return out
