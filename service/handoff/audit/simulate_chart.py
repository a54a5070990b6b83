"""`handoff simulate --chart FILE.png`: assignments per agent, recorded beside simulated.

Grouped bars, one pair per agent, so a workflow that piles contacts on one agent, or spreads
them, shows at a glance. matplotlib is an optional extra (`handoff[demo]`), imported only
when a chart is drawn, with the Agg backend (no display needed).
"""

import importlib.util
from pathlib import Path

from handoff.audit.simulate import Outcome

__all__ = ["ChartUnavailable", "can_draw", "write_chart"]


class ChartUnavailable(Exception):
    """matplotlib is not installed."""


def can_draw() -> None:
    """Raise `ChartUnavailable` now, before a long simulation, if no chart could be drawn."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ChartUnavailable(
            "--chart needs matplotlib: pip install 'handoff[demo]' (or matplotlib)"
        )


def write_chart(outcome: Outcome, path: Path) -> Path:
    """Draw the chart to `path` (PNG) and return it."""
    can_draw()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rec, sim = outcome.recorded.assignments, outcome.simulated.assignments
    agents = sorted(set(outcome.agents) | set(rec) | set(sim))
    xs = range(len(agents))
    width = 0.4
    figure, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(agents) + 2), 4), layout="constrained")
    bars = (
        ("recorded", rec, -width / 2, "0.6"),
        (f"simulated ({outcome.workflow_id})", sim, width / 2, "tab:blue"),
    )
    for label, counts, shift, colour in bars:
        ax.bar(
            [x + shift for x in xs],
            [counts.get(a, 0) for a in agents],
            width,
            label=label,
            color=colour,
        )
    crowded = len(agents) > 8
    ax.set_xticks(
        list(xs), agents, rotation=45 if crowded else 0, ha="right" if crowded else "center"
    )
    ax.set_ylabel("assignments")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(
        f"{outcome.workspace_id}: {outcome.since:%Y-%m-%d %H:%M} .. "
        f"{outcome.until:%Y-%m-%d %H:%M}, {len(outcome.changed)} contact(s) change assignee",
        loc="left",
        fontsize=10,
    )
    ax.legend()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
