"""The demo's PNG: how each workspace's conversations spread over its agents through the day.

One panel per workspace, one step line per agent (cumulative assignments on the simulated
clock), the spans when nobody was online shaded, and the queue's length on a second axis:
together they show the routing at work (round robin keeps the lines together, a shift change
hands the slope to the next agents, a queue fills at night and drains when the first agent
logs in). matplotlib is an optional extra (`handoff[demo]`), imported only here, when a chart
is drawn, with the Agg backend (no display needed).
"""

from collections.abc import Mapping
from pathlib import Path

from handoff.demo.summary import Summary
from handoff.demo.traffic import DAY

__all__ = ["write_chart"]

_HOUR = 3600.0


def write_chart(
    summary: Summary,
    path: Path,
    roles: Mapping[tuple[str, str], str] | None = None,
    subtitle: str = "",
) -> Path:
    """Draw the chart to `path` (PNG) and return it; raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    roles = roles or {}
    workspaces = [w.workspace_id for w in summary.workspaces]
    figure, axes = plt.subplots(
        len(workspaces),
        1,
        figsize=(12, 0.6 + 3.0 * len(workspaces)),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    colours = [f"C{n}" for n in range(10)]  # the default colour cycle
    for ax, ws in zip(axes[:, 0], workspaces, strict=True):
        for n, (start, end) in enumerate(summary.nobody_online.get(ws, ())):
            label = "nobody online" if n == 0 else None
            ax.axvspan(start / _HOUR, end / _HOUR, color="0.9", label=label, lw=0)
        series = [s for s in summary.series if s.workspace_id == ws]
        for n, s in enumerate(series):
            xs = [0.0, *(t / _HOUR for t in s.times), DAY / _HOUR]
            ys = [0, *range(1, len(s.times) + 1), len(s.times)]
            role = roles.get((ws, s.user_id))
            label = (
                f"{s.user_id} ({role}): {len(s.times)}" if role else f"{s.user_id}: {len(s.times)}"
            )
            ax.step(xs, ys, where="post", lw=2, color=colours[n % len(colours)], label=label)
        waiting = summary.waiting.get(ws, ())
        if any(n for _, n in waiting):
            queue = ax.twinx()
            xs = [0.0, *(t / _HOUR for t, _ in waiting), DAY / _HOUR]
            ys = [0, *(n for _, n in waiting), waiting[-1][1]]
            queue.fill_between(xs, ys, step="post", color="tab:red", alpha=0.18, lw=0)
            queue.step(xs, ys, where="post", color="tab:red", lw=0.8, alpha=0.7)
            queue.set_ylim(0, max(4, max(ys) * 2.2))
            queue.set_ylabel("waiting in queue", color="tab:red", fontsize=8)
            queue.tick_params(axis="y", colors="tab:red", labelsize=8)
            queue.yaxis.set_major_locator(MaxNLocator(integer=True))
        row = next(w for w in summary.workspaces if w.workspace_id == ws)
        ax.set_title(
            f"{ws}: {row.opened} conversations, {row.reassignments} reassigned, "
            f"{sum(row.queued.values())} queued, {sum(row.failed.values())} failed",
            loc="left",
            fontsize=10,
        )
        ax.set_ylabel("assignments so far")
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=1 if len(series) < 7 else 2)
    bottom = axes[-1, 0]
    bottom.set_xlim(0, 24)
    bottom.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    bottom.set_xlabel("simulated time of day")
    title = "handoff demo: cumulative assignments per agent over a simulated day"
    figure.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
