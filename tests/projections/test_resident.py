"""A view that lets idle contacts' rows go and reads them back when an event names them
decides exactly as a view that keeps everything: the same decisions, to the byte, and the
same rows for what the event touched."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from handoff.adapters.cloudevents import Accepted, dump_event, parse
from handoff.core.envelope import Envelope
from handoff.core.ids import ContactId, RunId
from handoff.core.timers import elapsed
from handoff.core.view import WorkspaceView
from handoff.demo.traffic import ALL_FAMILIES, CloudEvent, TrafficParams, day_events
from handoff_projections import TABLES, Changed
from handoff_projections.apply import apply as fold_and_decide
from handoff_projections.resident import contact_rows, evict, named, pinned, wanted
from tests.builders import closed, event, opened, presence, team, user, workflow

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def _apply(view: WorkspaceView, event: Envelope) -> tuple[list[bytes], set[Changed]]:
    changed: set[Changed] = set()
    decisions = fold_and_decide(view, event, event.time, lambda _, rows: changed.update(rows))
    return [dump_event(d) for d in decisions], changed


def _rows(view: WorkspaceView) -> dict[Changed, object]:
    return {(t, k): v for t in TABLES for k, v in getattr(view, t).items()}


@dataclass
class Twins:
    """Each workspace twice: `kept` keeps every row (as a replay of the log would), `lean`
    is evicted after every input, writes the rows it changes through to `stored` and reads
    back from there what an input names, as the service does with its database."""

    kept: dict[str, WorkspaceView] = field(default_factory=dict)
    lean: dict[str, WorkspaceView] = field(default_factory=dict)
    stored: dict[str, dict[Changed, object]] = field(default_factory=dict)
    whole: dict[str, set[ContactId]] = field(default_factory=dict)
    decisions: list[bytes] = field(default_factory=list)
    evicted: int = 0

    def run(self, inputs: Iterable[Envelope]) -> "Twins":
        for e in inputs:
            ws = e.workspaceid
            kept = self.kept.setdefault(ws, WorkspaceView(workspace_id=ws))
            lean = self.lean.setdefault(ws, WorkspaceView(workspace_id=ws))
            while due := sorted(
                (t.due_at, r) for r, t in kept.timers.items() if t.due_at <= e.time
            ):
                at, run_id = due[0]
                timer = kept.timers[run_id]
                self._both(kept, lean, elapsed(ws, RunId(run_id), timer.step_id, timer.kind, at))
            self._both(kept, lean, e)
        for ws, kept in self.kept.items():
            assert self.stored[ws] == _rows(kept), ws
        return self

    def _both(self, kept: WorkspaceView, lean: WorkspaceView, e: Envelope) -> None:
        known = self.whole.setdefault(e.workspaceid, set())
        stored = self.stored.setdefault(e.workspaceid, {})
        contact, conversation = named(e)
        contacts = [contact] if contact is not None and contact not in known else []
        conversations = [conversation] if conversation is not None else []
        conversations = [c for c in conversations if c not in lean.conversations]
        for table, key in wanted(lean, contacts, conversations):
            if (table, key) in stored:
                getattr(lean, table)[key] = stored[table, key]
        known.update(contacts)

        expected, _ = _apply(kept, e)
        decided, changed = _apply(lean, e)
        assert decided == expected, f"{e.workspaceid}: {e.type} {e.id}"
        self.decisions += expected
        for table, key in changed:
            value = getattr(lean, table).get(key)
            if value is None:
                stored.pop((table, key), None)
            else:
                stored[table, key] = value

        before = contact_rows(lean)
        known &= evict(lean)
        self.evicted += before - contact_rows(lean)


def _next_day(events: list[CloudEvent]) -> Iterator[CloudEvent]:
    """The same contacts come back the next day. A third of their conversations are new,
    a third reopened, and on a third the contact writes again without a reopen."""
    for e in events:
        if e["type"] in {"user.upserted", "team.upserted", "workflow.published"}:
            continue
        data = dict(e["data"])
        conversation = data.get("conversation_id")
        kind = sum(map(ord, conversation)) % 3 if conversation else 0
        if kind == 2 and e["type"] in {"conversation.opened", "conversation.closed"}:
            continue
        if kind == 0 and conversation:
            data["conversation_id"] = f"d2-{conversation}"
        if "message_id" in data:
            data["message_id"] = f"d2-{data['message_id']}"
        when = datetime.fromisoformat(e["time"]) + timedelta(days=1)
        yield {**e, "id": f"d2-{e['id']}", "time": when.isoformat(), "data": data}


def _two_days(seed: int) -> Iterator[Envelope]:
    params = TrafficParams(
        start=START,
        workspaces=len(ALL_FAMILIES),
        conversations_per_workspace=25,
        agents_per_team=(3, 6),
        families=ALL_FAMILIES,
        seed=seed,
    )
    first = day_events(params)
    for raw in [*first, *_next_day(first)]:
        parsed = parse(orjson.dumps(raw), 1 << 20)
        assert isinstance(parsed, Accepted)
        yield parsed.event


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_days_of_traffic_decide_alike_when_idle_contacts_leave_memory(seed: int) -> None:
    twins = Twins().run(_two_days(seed))
    assert len(twins.decisions) > 1000  # workflows ran, assignments were made
    assert twins.evicted > 1000  # rows did leave, and were read back when named again
    for ws, lean in twins.lean.items():  # what stays is what is pinned
        contacts, conversations = pinned(lean)
        assert lean.contacts.keys() <= contacts
        assert lean.conversations.keys() <= conversations
        assert contact_rows(lean) < contact_rows(twins.kept[ws])


def _setup() -> list[Envelope]:
    return [user("ann"), user("bob"), presence("ann"), presence("bob"), team("t", "ann", "bob")]


def test_a_run_that_outlives_its_conversation_keeps_the_contact_it_reads() -> None:
    """A survey an hour after the close, for VIPs only: the contact has no open
    conversation while the run waits, and the branch reads its fields when it wakes."""
    survey = workflow(
        {"type": "wait", "duration": "1h"},
        {
            "type": "branch",
            "branches": [
                {
                    "name": "vip",
                    "when": {
                        "all": [
                            {"contact_field": "tier", "op": "eq", "value": "vip"},
                            {"conversation": "channel", "op": "eq", "value": "whatsapp"},
                        ]
                    },
                    "steps": [{"id": "ask", "type": "send_message", "text": "How did we do?"}],
                }
            ],
            "else": [],
        },
        trigger="conversation_closed",
    )
    events = [
        *_setup(),
        survey,
        opened("c1", fields={"tier": "vip"}, channel="whatsapp"),
        closed("c1"),
    ]
    later = presence("bob", "away", at=events[-1].time + timedelta(hours=2))
    twins = Twins().run([*events, later])
    assert any(b'"How did we do?"' in d for d in twins.decisions)
    assert twins.evicted > 0


def test_what_an_idle_contact_was_told_is_there_when_it_comes_back() -> None:
    """An update and an assignment arrive while the contact has nothing open; its next
    conversation is routed by the new field, counts for the new assignee, and is not
    welcomed as a first-timer's."""
    vip = workflow(
        {
            "type": "branch",
            "branches": [
                {
                    "name": "vip",
                    "when": {"all": [{"contact_field": "tier", "op": "eq", "value": "vip"}]},
                    "steps": [{"id": "vip", "type": "assign_to", "user_id": "ann"}],
                }
            ],
            "else": [{"id": "rr", "type": "assign_to", "team_id": "t", "logic": "round_robin"}],
        },
    )
    hello = workflow(
        {"type": "send_message", "text": "Welcome, first-timer!"}, id="hello", once_per_contact=True
    )
    events = [
        *_setup(),
        vip,
        hello,
        opened("c1", "v1", fields={"lang": "es"}),
        closed("c1", "v1"),
        event("contact.updated", {"contact_id": "c1", "fields": {"tier": "vip"}}),
        event(
            "contact.assignee_changed",
            {"contact_id": "c1", "assignee_id": "bob", "actor": {"type": "user", "user_id": "x"}},
        ),
        opened("c1", "v2"),
    ]
    twins = Twins().run(events)
    assert any(b'"assignee_id":"ann"' in d and b'"v2"' in d for d in twins.decisions)
    assert sum(b"Welcome, first-timer!" in d for d in twins.decisions) == 1
    assert twins.lean["ws-1"].open_contacts == twins.kept["ws-1"].open_contacts
