"""The soak's account, from what was sent, what the event log holds and what the output
topics hold: lost (inputs sent and never applied, outputs decided and never seen), decided
twice (an input logged more than once, a contact assigned twice by one cause, an output id
logged twice, an output on Kafka that the log never decided), re-sent outputs (the same id
more than once on Kafka: allowed, outputs are at least once), the largest delays; then the
evidence for every non-zero count (ids, offsets, times).
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from handoff.soak.ledger import Ledger, Where
from handoff.soak.outputs import DeadLetter, SeenOutput
from handoff.soak.traffic import SentInput

__all__ = ["Account", "account", "by_partition", "render"]

ASSIGNMENT_TYPES = frozenset(
    {"contact.assigned", "contact.unassigned", "assignment.queued", "assignment.failed"}
)
"""Decisions about a contact that one cause makes at most once per contact."""

_SHOWN = 12
"""Evidence lines shown per finding."""

ContactCause = tuple[str, str, str, str]
"""(workspace, contact, causation id, type)."""


@dataclass(frozen=True, slots=True)
class Delay:
    seconds: float
    input_id: str


@dataclass
class Account:
    sent: int
    refused_by_broker: int
    applied: int
    timers: int
    dead_lettered: list[DeadLetter]
    """Dead letters of inputs the soak sent."""
    other_letters: int
    outputs_expected: int
    outputs_seen: int
    output_records: int
    lost_inputs: list[str] = field(default_factory=list)
    lost_outputs: list[str] = field(default_factory=list)
    inputs_twice: list[str] = field(default_factory=list)
    assigned_twice: dict[ContactCause, set[str]] = field(default_factory=dict)
    outputs_twice: list[str] = field(default_factory=list)
    not_logged: list[str] = field(default_factory=list)
    """Output ids seen on Kafka that the log never decided."""
    resent: dict[str, int] = field(default_factory=dict)
    """Output id -> records seen with it, when more than one."""
    to_output: Delay | None = None
    to_log: Delay | None = None

    @property
    def lost(self) -> int:
        return len(self.lost_inputs) + len(self.lost_outputs)

    @property
    def decided_twice(self) -> int:
        return (
            len(self.inputs_twice)
            + len(self.assigned_twice)
            + len(self.outputs_twice)
            + len(self.not_logged)
        )

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.decided_twice == 0


def account(
    sent: Mapping[str, SentInput],
    refused: int,
    ledger: Ledger,
    seen: Mapping[str, SeenOutput],
    letters: Mapping[str, DeadLetter],
) -> Account:
    applied = [i for i in sent if i in ledger.inputs]
    ours = [d for d in letters.values() if d.cause in sent]
    result = Account(
        sent=len(sent),
        refused_by_broker=refused,
        applied=len(applied),
        timers=sum(1 for i in ledger.inputs.values() if i.timer),
        dead_lettered=ours,
        other_letters=len(letters) - len(ours),
        outputs_expected=len(ledger.outputs),
        outputs_seen=len(seen),
        output_records=sum(s.records for s in seen.values()),
    )
    result.lost_inputs = [i for i in sent if i not in ledger.inputs]
    result.lost_outputs = [o for o in ledger.outputs if o not in seen]
    result.inputs_twice = [i for i, row in ledger.inputs.items() if row.rows > 1]
    result.outputs_twice = [o for o, row in ledger.outputs.items() if row.rows > 1]
    result.not_logged = [o for o in seen if o not in ledger.outputs]
    result.resent = {o: s.records for o, s in seen.items() if s.records > 1}
    result.assigned_twice = _assigned_twice(ledger, seen)
    first_output: dict[str, float] = {}
    for s in seen.values():
        if s.cause is not None and s.cause in sent:
            first_output[s.cause] = min(first_output.get(s.cause, s.first_at), s.first_at)
    result.to_output = _largest((i, at - sent[i].at) for i, at in first_output.items())
    result.to_log = _largest((i, ledger.inputs[i].decided_at - sent[i].at) for i in applied)
    return result


def _assigned_twice(ledger: Ledger, seen: Mapping[str, SeenOutput]) -> dict[ContactCause, set[str]]:
    """Assignment decisions about one contact by one cause with more than one id, in the
    log or on Kafka."""
    ids: dict[ContactCause, set[str]] = defaultdict(set)
    for output_id, row in ledger.outputs.items():
        if row.type in ASSIGNMENT_TYPES and row.contact and row.cause:
            ids[row.workspace, row.contact, row.cause, row.type].add(output_id)
    for output_id, s in seen.items():
        if s.type in ASSIGNMENT_TYPES and s.contact and s.cause:
            ids[s.workspace, s.contact, s.cause, s.type].add(output_id)
    return {key: found for key, found in ids.items() if len(found) > 1}


def _largest(delays: Iterable[tuple[str, float]]) -> Delay | None:
    best: Delay | None = None
    for input_id, seconds in delays:
        if best is None or seconds > best.seconds:
            best = Delay(seconds, input_id)
    return best


def ranges(numbers: Iterable[int]) -> str:
    """`[1, 2, 3, 7]` -> `1-3, 7`."""
    spans: list[list[int]] = []
    for n in sorted(set(numbers)):
        if spans and spans[-1][1] == n - 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


def by_partition(wheres: Iterable[Where]) -> dict[tuple[str, int], str]:
    """(topic, partition) -> its offsets as ranges."""
    grouped: dict[tuple[str, int], list[int]] = defaultdict(list)
    for topic, partition, offset in wheres:
        grouped[topic, partition].append(offset)
    return {tp: ranges(offsets) for tp, offsets in sorted(grouped.items())}


def _n(value: int) -> str:
    return f"{value:>9,}"


def render(
    a: Account,
    sent: Mapping[str, SentInput],
    ledger: Ledger,
    seen: Mapping[str, SeenOutput],
    started_wall: float,
) -> list[str]:
    """The account's lines, then the evidence of whatever is not zero."""

    def since(at: float) -> str:
        return f"+{at - started_wall:.1f} s"

    refused = f"   ({a.refused_by_broker:,} more refused by the broker)"
    lines = [
        f"  inputs sent:          {_n(a.sent)}" + (refused if a.refused_by_broker else ""),
        f"  inputs applied:       {_n(a.applied)}   (and {a.timers:,} timers fired)",
        f"  dead-lettered:        {_n(len(a.dead_lettered))}"
        + (f"   ({a.other_letters:,} letters of records not sent)" if a.other_letters else ""),
        f"  outputs expected:     {_n(a.outputs_expected)}   (decided in the log;"
        f" {ledger.decisions:,} decisions with run events; outbox left: {ledger.outbox_left:,})",
        f"  outputs seen on Kafka:{_n(a.outputs_seen)}   distinct"
        f" ({a.output_records:,} records; re-sent: {len(a.resent):,} ids,"
        f" {sum(a.resent.values()) - len(a.resent):,} extra records)",
        f"  lost:                 {_n(a.lost)}   ({len(a.lost_inputs):,} inputs never applied,"
        f" {len(a.lost_outputs):,} outputs decided and never seen)",
        f"  decided twice:        {_n(a.decided_twice)}   ({len(a.inputs_twice):,} inputs logged"
        f" twice, {len(a.assigned_twice):,} contacts assigned twice by one cause,"
        f" {len(a.outputs_twice):,} output ids logged twice, {len(a.not_logged):,} outputs"
        " on Kafka the log never decided)",
    ]
    delays = []
    for what, delay in (("its first output", a.to_output), ("its log row", a.to_log)):
        if delay is not None:
            sent_at = since(sent[delay.input_id].at)
            delays.append(f"{delay.seconds:.2f} s to {what} ({delay.input_id}, sent {sent_at})")
    lines.append(f"  largest delay:        {'; '.join(delays) or 'none'}")

    def show(title: str, count: int, items: Iterable[str]) -> None:
        if count:
            lines.append(f"  {title} ({count:,}; the first {min(count, _SHOWN)}):")
            lines.extend(f"    {item}" for item, _ in zip(items, range(_SHOWN), strict=False))

    if a.lost_inputs:
        lines.append("  inputs never applied, by input partition (stored position in brackets):")
        for (topic, partition), offsets in by_partition(
            (sent[i].topic, sent[i].partition, sent[i].offset) for i in a.lost_inputs
        ).items():
            stored = ledger.positions.get((topic, partition))
            lines.append(f"    {topic}[{partition}] (at {stored}): {offsets}")
    show(
        "inputs never applied",
        len(a.lost_inputs),
        (
            f"{i} {sent[i].type} {sent[i].workspace} {sent[i].topic}[{sent[i].partition}]"
            f"@{sent[i].offset} sent {since(sent[i].at)}"
            for i in a.lost_inputs
        ),
    )
    show(
        "dead-lettered inputs",
        len(a.dead_lettered),
        (f"{d.cause} {d.topic}[{d.partition}]@{d.offset}: {d.reason}" for d in a.dead_lettered),
    )
    show(
        "outputs decided and never seen",
        len(a.lost_outputs),
        (
            f"{o} {ledger.outputs[o].type} {ledger.outputs[o].workspace}"
            f" seq {ledger.outputs[o].seq} cause {ledger.outputs[o].cause}"
            f" decided {since(ledger.outputs[o].decided_at)}"
            for o in a.lost_outputs
        ),
    )
    show(
        "inputs logged more than once",
        len(a.inputs_twice),
        (f"{i} x{ledger.inputs[i].rows} at {ledger.inputs[i].where}" for i in a.inputs_twice),
    )
    show(
        "contacts assigned twice by one cause",
        len(a.assigned_twice),
        (
            f"{ws} {contact} {kind} by {cause}: "
            + ", ".join(
                f"{o} ({'log' if o in ledger.outputs else ''}"
                f"{'+' if o in ledger.outputs and o in seen else ''}"
                f"{'kafka' if o in seen else ''})"
                for o in sorted(ids)
            )
            for (ws, contact, cause, kind), ids in a.assigned_twice.items()
        ),
    )
    show(
        "output ids logged more than once",
        len(a.outputs_twice),
        (f"{o} {ledger.outputs[o].type} x{ledger.outputs[o].rows}" for o in a.outputs_twice),
    )
    show(
        "outputs on Kafka the log never decided",
        len(a.not_logged),
        (
            f"{o} {seen[o].type} {seen[o].workspace} cause {seen[o].cause}"
            f" seen {since(seen[o].first_at)}"
            for o in a.not_logged
        ),
    )
    show(
        "re-sent outputs (allowed: at least once)",
        len(a.resent),
        (f"{o} {seen[o].type} x{n}" for o, n in a.resent.items()),
    )
    return lines
