"""The load test as a picture (issue 12, item 2): offered and achieved rate over time, latency percentiles per
scenario, from Locust's ``_stats_history.csv`` files (``--csv-full-history``). matplotlib, Agg backend (no
display needed)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from loadtest import slo
from loadtest.model import PACE


def _laid_out(runs: list[list[slo.HistoryRow]]) -> tuple[dict[str, dict[int, slo.HistoryRow]], list[int]]:
    """Each run's rows by name and by second on one axis: a run begins where the one before it ended (a gap of
    two seconds), whenever it actually ran. Returns the rows and where each run begins."""
    by_name: dict[str, dict[int, slo.HistoryRow]] = defaultdict(dict)
    starts, offset = [], 0
    for rows in runs:
        if not rows:
            continue
        first, last = min(r.timestamp for r in rows), max(r.timestamp for r in rows)
        starts.append(offset)
        for row in rows:
            by_name[row.name][row.timestamp - first + offset] = row
        offset += last - first + 2
    return by_name, starts


def draw(histories: list[Path], png: Path) -> Path:
    """One PNG: the top panel offered iterations/s (users / PACE), achieved iterations/s (the actors' marker
    requests) and requests/s; below, p99 (solid) and p50 (dotted) per scenario with the SLO thresholds. Runs
    follow one another on the time axis (seconds since the first began), a vertical line where each begins."""
    runs = [slo.read_history(h) for h in histories if h.exists()]
    fig, (rate_ax, latency_ax) = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    by_name, starts = _laid_out(runs)
    total = by_name.get("Aggregated", {})
    times = sorted(total)
    rate_ax.plot(times, [total[t].users / PACE for t in times], label="offered iterations/s", color="tab:blue")
    markers = [by_name[m] for m in slo.MARKERS.values() if m in by_name]
    achieved = [sum(series[t].rps for series in markers if t in series) for t in times]
    rate_ax.plot(times, achieved, label="achieved iterations/s", color="tab:green")
    rate_ax.plot(times, [total[t].rps for t in times], label="requests/s", color="tab:gray", alpha=0.6)
    rate_ax.set_ylabel("per second")
    rate_ax.legend(loc="upper left")
    rate_ax.set_title("offered vs achieved rate")
    for start in starts[1:]:
        for ax in (rate_ax, latency_ax):
            ax.axvline(start, color="black", linestyle="--", linewidth=0.8)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, scenario in enumerate(slo.SCENARIOS):
        names = [n for n in by_name if slo.scenario_of(n) == scenario]
        if not names:
            continue
        colour = colours[index % len(colours)]
        for attribute, style in (("p99_ms", "-"), ("p50_ms", ":")):
            points = defaultdict(list)
            for name in names:
                for t, row in by_name[name].items():
                    value = getattr(row, attribute)
                    if value:  # None: no request in the window; 0: none either
                        points[t].append(value)
            xs = sorted(points)
            if not xs:
                continue
            label = f"{scenario} {attribute[:3]}"
            latency_ax.plot(xs, [max(points[x]) for x in xs], style, color=colour, label=label)
    thresholds: dict[float, list[str]] = defaultdict(list)
    for objective in slo.SLO_CLASSES:
        thresholds[objective.p99_ms].append(objective.name)
    for threshold, names in thresholds.items():
        latency_ax.axhline(threshold, color="red", linestyle="--", linewidth=0.6)
        label = f"p99 SLO {threshold:g} ms: {', '.join(names)}"
        latency_ax.annotate(label, (0, threshold), xytext=(2, 2), textcoords="offset points", fontsize=7, color="red")
    latency_ax.set_yscale("log")
    latency_ax.set_ylabel("ms (10 s window)")
    latency_ax.set_xlabel("seconds since start")
    latency_ax.set_title("latency percentiles per scenario")
    if latency_ax.get_legend_handles_labels()[0]:
        latency_ax.legend(loc="upper left", fontsize=7, ncol=2)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png
