"""The queue by what its contacts wait for: one line per request, in serving order.

Contacts waiting for the same thing (team, online only, step limit, skills still required)
form a line, ordered by priority (highest first), then by age. When someone may have become
eligible, `handoff.core.queue.drain` serves the heads of the lines in that order; a line
whose head nobody can take is left whole, since nobody can take the contacts behind it
either. Serving costs the contacts served and the lines, not the waiting contacts times the
team; and a contact nobody can take (a missing skill) holds back only its own line.

Derived like `handoff.core.pools`: built from the `queue` rows when first asked for and
kept in step by `follow`.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sortedcontainers import SortedList

from handoff.core.ids import ContactId, RunId

if TYPE_CHECKING:
    from handoff.core.view import QueueEntry, WorkspaceView

__all__ = ["LineKey", "Place", "QueueLines", "line_of"]

LineKey = tuple[str | None, bool, int | None, tuple[str, ...]]
"""(team id or None for the workspace, online only, step limit, skills required)."""

Place = tuple[int, int, RunId]
"""(-priority, position, run): a line's serving order."""


def line_of(entry: "QueueEntry") -> LineKey:
    return (
        entry.team_id,
        entry.only_online,
        entry.max_open_contacts,
        tuple(sorted(set(entry.required_skills))),
    )


class QueueLines:
    __slots__ = ("lines", "of_contact", "place_of")

    def __init__(self) -> None:
        self.lines: dict[LineKey, SortedList[Place]] = {}
        self.place_of: dict[RunId, tuple[LineKey, Place, ContactId]] = {}
        self.of_contact: dict[ContactId, set[RunId]] = {}

    @classmethod
    def of(cls, view: "WorkspaceView") -> "QueueLines":
        lines = cls()
        for run_id in view.queue:
            lines._refresh(view, run_id)
        return lines

    def follow(self, view: "WorkspaceView", changed: Iterable[tuple[str, str]]) -> None:
        for table, key in changed:
            if table == "queue":
                self._refresh(view, RunId(key))

    def waiting_of(self, contact_id: ContactId) -> list[RunId]:
        """The contact's queued runs, oldest first."""
        runs = self.of_contact.get(contact_id, ())
        return sorted(runs, key=lambda run_id: self.place_of[run_id][1][1])

    def _refresh(self, view: "WorkspaceView", run_id: RunId) -> None:
        held = self.place_of.pop(run_id, None)
        if held is not None:
            key, place, contact_id = held
            line = self.lines[key]
            line.remove(place)
            if not line:
                del self.lines[key]
            runs = self.of_contact[contact_id]
            runs.discard(run_id)
            if not runs:
                del self.of_contact[contact_id]
        entry = view.queue.get(run_id)
        if entry is None:
            return
        key, place = line_of(entry), (-entry.priority, entry.position, run_id)
        self.lines.setdefault(key, SortedList()).add(place)
        self.place_of[run_id] = (key, place, entry.contact_id)
        self.of_contact.setdefault(entry.contact_id, set()).add(run_id)
