"""The text report of `handoff simulate`: what a person reads to decide whether to publish.

A table per agent (recorded beside simulated), the queue, the fairness figure, the contacts
whose assignee would differ (the first `limit` of them, with the count) and, always, what a
simulation over recorded behaviour cannot know.
"""

from handoff.audit.simulate import CANNOT_KNOW, Figures, Outcome
from handoff.stats import quantile

__all__ = ["report"]


def report(outcome: Outcome, limit: int = 20) -> str:
    o = outcome
    live = "in place of the recorded one" if o.replaces else "beside the recorded workflows"
    rec_timers, sim_timers = o.timers
    lines = [
        f"simulate {o.workspace_id}: workflow {o.workflow_id!r} {live}, "
        f"published at {o.since.isoformat()}",
        f"window {o.since.isoformat()} .. {o.until.isoformat()}: {o.inputs} recorded inputs "
        f"re-decided; timers fired: {rec_timers} recorded, {sim_timers} simulated"
        + (
            f"; {o.skipped_publishes} recorded publish(es) of {o.workflow_id!r} skipped"
            if o.skipped_publishes
            else ""
        ),
        "",
        *_agents(o),
        "",
        _queue(o.recorded, o.simulated),
        _fairness(o),
        "",
        *_changed(o, limit),
        "",
        f"What it cannot know: {CANNOT_KNOW}",
    ]
    return "\n".join(lines)


def _agents(o: Outcome) -> list[str]:
    rec, sim = o.recorded, o.simulated
    agents = sorted(
        set(o.agents) | set(rec.peak_open_contacts) | set(sim.peak_open_contacts),
    )
    width = max([len("agent"), *map(len, agents)])
    pair = f"{'rec':>5} {'sim':>5}"
    lines = [
        f"{'agent':<{width}}  {'assigned':>11}  {'peak open':>11}  {'reassigned':>11}  "
        "queue wait median/p90",
        f"{'':<{width}}  {pair}  {pair}  {pair}  {'recorded':<15} simulated",
    ]
    for user in agents:
        lines.append(
            f"{user:<{width}}  "
            f"{rec.assignments.get(user, 0):>5} {sim.assignments.get(user, 0):>5}  "
            f"{rec.peak_open_contacts.get(user, 0):>5} {sim.peak_open_contacts.get(user, 0):>5}  "
            f"{rec.reassignments.get(user, 0):>5} {sim.reassignments.get(user, 0):>5}  "
            f"{_waits(rec.waits.get(user, [])):<15} {_waits(sim.waits.get(user, [])):<15}".rstrip()
        )
    lines.append(
        f"{'all':<{width}}  "
        f"{sum(rec.assignments.values()):>5} {sum(sim.assignments.values()):>5}  "
        f"{'':>11}  "
        f"{sum(rec.reassignments.values()):>5} {sum(sim.reassignments.values()):>5}  "
        f"{_waits(rec.all_waits()):<15} {_waits(sim.all_waits()):<15}".rstrip()
    )
    return lines


def _queue(rec: Figures, sim: Figures) -> str:
    return (
        f"queue (recorded -> simulated): queued {rec.queued} -> {sim.queued}; served "
        f"{len(rec.all_waits())} -> {len(sim.all_waits())}; timed out {rec.timed_out} -> "
        f"{sim.timed_out}; left unserved (closed, assigned in the inbox) {rec.left} -> "
        f"{sim.left}; still waiting at the end {rec.waiting_at_end} -> {sim.waiting_at_end}"
    )


def _fairness(o: Outcome) -> str:
    head = (
        f"fairness (assignments of the busiest minus the least busy of the {len(o.agents)} "
        "agents online in the window or assigned):"
    )
    sides = []
    for name, figures in (("recorded", o.recorded), ("simulated", o.simulated)):
        spread = o.spread(figures)
        if spread is None:
            sides.append(f"{name} -")
            continue
        busiest, least, difference = spread
        counts = figures.assignments
        sides.append(
            f"{name} {difference} ({busiest} {counts.get(busiest, 0)}, "
            f"{least} {counts.get(least, 0)})"
        )
    return f"{head} {', '.join(sides)}"


def _changed(o: Outcome, limit: int) -> list[str]:
    if not o.changed:
        return ["no contact would have another assignee"]
    shown = o.changed[:limit]
    more = f" (the first {len(shown)})" if len(shown) < len(o.changed) else ""
    width = max([len("contact"), *(len(c.contact_id) for c in shown)])
    lines = [
        f"{len(o.changed)} contact(s) would have another assignee{more}:",
        f"  {'contact':<{width}}  {'recorded':<12} simulated",
    ]
    for c in shown:
        lines.append(f"  {c.contact_id:<{width}}  {c.recorded or '-':<12} {c.simulated or '-'}")
    return lines


def _waits(waits: list[float]) -> str:
    if not waits:
        return "-"
    return f"{_duration(quantile(waits, 0.5))}/{_duration(quantile(waits, 0.9))}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
