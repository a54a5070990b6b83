"""A brute-force model of routing, straight from the contract's rules, for the property tests.

It reads only the view's plain rows (never the routing index), looks at every member, and
orders the eligible ones the way the contract says: round robin from the team's cursor,
least open contacts or longest idle with ties in that round-robin order. `State` is a copy
of the rows a decision sees, with the assignments the decision has made so far laid over it
(the contract's "each must see the open counts and cursors the earlier ones left").
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handoff.core.envelope import Envelope, OutputEnvelope
from handoff.core.events import ContactAssigned, ContactUnassigned, SkillsRelaxed
from handoff.core.pools import Pools
from handoff.core.queue_lines import QueueLines
from handoff.core.view import Contact, QueueEntry, Team, User, WorkspaceView
from handoff.core.workflow import AssignTo, ContactFieldSkill
from handoff_projections.apply import apply as fold_and_decide

__all__ = [
    "Ask",
    "State",
    "apply_seen",
    "expected_choice",
    "index_of",
    "lines_of",
    "members",
    "pick",
    "ranking",
    "reason",
    "resolved_skills",
    "rotation",
    "step_of",
]


@dataclass
class State:
    """The rows a decision reads, copied, with this decision's assignments laid over them."""

    version: int
    users: dict[str, User]
    presence: dict[str, str]
    teams: dict[str, Team]
    contacts: dict[str, Contact]
    assignees: dict[str, str]
    open_conversations: dict[str, tuple[str, ...]]
    open_contacts: dict[str, int]
    last_seq: dict[str, int]
    last_assignees: dict[str, str]
    cursors: dict[str, str]
    queue: dict[str, QueueEntry]
    made: int = 0
    relaxed: set[str] = field(default_factory=set)
    """Runs this decision relaxed (`run.skills_relaxed`)."""

    @classmethod
    def of(cls, view: WorkspaceView) -> "State":
        return cls(
            version=view.version,
            users={k: v for k, v in view.users.items()},
            presence={k: v for k, v in view.presence.items()},
            teams={k: v for k, v in view.teams.items()},
            contacts={k: v for k, v in view.contacts.items()},
            assignees={k: v for k, v in view.assignees.items()},
            open_conversations={k: v for k, v in view.open_conversations.items()},
            open_contacts={k: v for k, v in view.open_contacts.items()},
            last_seq={u: last.seq for u, last in view.last_assigned.items()},
            last_assignees={k: v for k, v in view.last_assignees.items()},
            cursors={k: v for k, v in view.rr_cursors.items()},
            queue={k: v for k, v in view.queue.items()},
        )

    def load(self, user_id: str) -> int:
        return self.open_contacts.get(user_id, 0)

    def follow(self, decision: OutputEnvelope) -> None:
        """Lay one of the decision's outputs over the rows, as the next one sees them."""
        match decision:
            case ContactAssigned(data=d):
                self._move(d.contact_id, d.assignee_id)
                self.made += 1
                self.last_seq[d.assignee_id] = self.version + self.made
                self.last_assignees[d.contact_id] = d.assignee_id
                if d.strategy != "specific_user":
                    self.cursors[d.team_id or ""] = d.assignee_id
            case ContactUnassigned(data=d):
                self._move(d.contact_id, None)
            case SkillsRelaxed(data=d):
                self.relaxed.add(d.run_id)
            case _:
                pass

    def _move(self, contact_id: str, to: str | None) -> None:
        previous = self.assignees.get(contact_id)
        if self.open_conversations.get(contact_id) and previous != to:
            if previous is not None:
                self.open_contacts[previous] = self.load(previous) - 1
            if to is not None:
                self.open_contacts[to] = self.load(to) + 1
        if to is None:
            self.assignees.pop(contact_id, None)
        else:
            self.assignees[contact_id] = to


@dataclass(frozen=True)
class Ask:
    """What a step asks of a member, beyond being one."""

    only_online: bool
    max_open_contacts: int | None = None
    skills: tuple[str, ...] = ()


def reason(state: State, user_id: str, ask: Ask) -> str | None:
    """Why the user may not take the contact (None: eligible), in the core's reason words."""
    user = state.users.get(user_id)
    if user is None:
        return "unknown user"
    presence = state.presence.get(user_id, "offline")
    if ask.only_online and presence != "online":
        return presence
    load = state.load(user_id)
    if user.max_open_contacts is not None and load >= user.max_open_contacts:
        return "at capacity"
    if ask.max_open_contacts is not None and load >= ask.max_open_contacts:
        return "at the step's limit"
    for skill in ask.skills:
        if skill not in user.skills:
            return f"missing skill {skill}"
    return None


def members(state: State, team_id: str | None) -> list[str]:
    """A team's members in team order; the workspace's users in user id order."""
    if team_id is None:
        return sorted(state.users)
    team = state.teams.get(team_id)
    return list(dict.fromkeys(team.members)) if team is not None else []


def rotation(order: list[str], cursor: str | None) -> list[str]:
    """Every member once, from the one after the cursor, wrapping; a cursor that is not a
    member (none yet, or removed) starts at the top."""
    if cursor is None or cursor not in order:
        return list(order)
    at = order.index(cursor)
    return order[at + 1 :] + order[: at + 1]


def ranking(state: State, team_id: str | None, logic: str, ask: Ask) -> list[str]:
    """Every eligible member, best first (a stable sort keeps ties in round-robin order)."""
    turn = rotation(members(state, team_id), state.cursors.get(team_id or ""))
    eligible = [u for u in turn if reason(state, u, ask) is None]
    if logic == "least_open_contacts":
        return sorted(eligible, key=state.load)
    if logic == "longest_idle":
        return sorted(eligible, key=lambda u: state.last_seq.get(u, 0))
    assert logic == "round_robin", logic
    return eligible


def pick(state: State, team_id: str | None, logic: str, ask: Ask) -> str | None:
    ranked = ranking(state, team_id, logic, ask)
    return ranked[0] if ranked else None


def resolved_skills(step: AssignTo, contact: Contact | None) -> tuple[str, ...]:
    """The step's skills for a contact: `{contact_field}` entries read from its fields."""
    fields: dict[str, Any] = dict(contact.fields) if contact is not None else {}
    skills: list[str] = []
    for skill in step.skills:
        if isinstance(skill, ContactFieldSkill):
            value = fields.get(skill.contact_field)
            if value is not None:
                skills.append(str(value).lower() if isinstance(value, bool) else str(value))
        else:
            skills.append(skill)
    return tuple(dict.fromkeys(skills))


def step_of(view: WorkspaceView, decision: ContactAssigned) -> AssignTo:
    ref = decision.data.workflow
    assert ref is not None
    step = view.workflow(ref.id, ref.version).step(ref.step_id)
    assert isinstance(step, AssignTo)
    return step


def expected_choice(
    state: State, step: AssignTo, contact_id: str, run_id: str
) -> tuple[str, str] | None:
    """(assignee, strategy) the contract asks of a team or workspace step for this contact
    and run, from the rows the decision sees now; None: nobody is eligible."""
    entry = state.queue.get(run_id)
    if entry is not None:
        relaxed = entry.relaxed or run_id in state.relaxed
        options = [() if relaxed else entry.skills]
    else:
        skills = resolved_skills(step, state.contacts.get(contact_id))
        options = [skills]
        if skills and step.relax_skills_after == "0s":
            options.append(())
    for skills in options:
        ask = Ask(step.only_online, step.max_open_contacts, skills)
        last = state.last_assignees.get(contact_id)
        if (
            step.prefer == "last_assignee"
            and last is not None
            and reason(state, last, ask) is None
            and last in members(state, step.team_id)
        ):
            return last, "last_assignee"
        chosen = pick(state, step.team_id, step.logic, ask)
        if chosen is not None:
            return chosen, step.logic
    return None


def apply_seen(
    view: WorkspaceView, event: Envelope, now: datetime
) -> tuple[State, list[OutputEnvelope]]:
    """Apply one input as the service does; also return the rows its decision saw (the view
    with the input folded in, before any decision)."""
    seen: list[State] = []

    def folded(folded_event: Envelope, changed: object) -> None:
        if not seen:
            seen.append(State.of(view))

    decisions = fold_and_decide(view, event, now, folded)
    return seen[0], decisions


Plain = dict[str, Any]


def index_of(pools: Pools) -> Plain:
    """The routing index as plain, comparable values (sorted lists as lists)."""
    return {
        "rosters": {
            team_id: {
                "order": list(roster.order),
                "rank_of": dict(roster.rank_of),
                "pools": {
                    key: (list(pool.by_turn), {o: list(m) for o, m in pool.orders.items()})
                    for key, pool in roster.pools.items()
                },
            }
            for team_id, roster in pools.rosters.items()
        },
        "standing": dict(pools.standing),
        "teams_of": {u: set(teams) for u, teams in pools.teams_of.items()},
    }


def lines_of(lines: QueueLines) -> Plain:
    return {
        "lines": {key: list(line) for key, line in lines.lines.items()},
        "place_of": dict(lines.place_of),
        "of_contact": {c: set(runs) for c, runs in lines.of_contact.items()},
    }
