"""A simulated day of inbox traffic for a few workspaces, as handoff's input CloudEvents.

Why a generator of its own: the demo must show routing under a believable load (shifts that
start and end, a lunch break, a quiet night and a busy noon, agents who answer fast, slowly or
never, contacts who give up), and the benchmark that follows the demo must drive the same mixed
stream. So this module is pure and reusable: `simulate_day(TrafficParams(...))` returns every
event of the day, in time order, and the same parameters always give the same events.

Two clocks. The *simulated* clock runs from 00:00 to 24:00 (86,400 simulated seconds); the
events' `time` values are *real* times: `start + simulated seconds / compression`. Real times
because the service orders its inputs by event time and fires its timers (a workflow's `wait`)
by the wall clock, so a day played live must carry the times it is played at. With the
default compression (1152) the day lasts 75 s of wall time and one simulated minute is 52 ms.
Nothing here reads the wall clock: `start` is a parameter.

Randomness comes from `random.Random`, seeded per workspace from `seed`, so adding a workspace
does not change the traffic of the others. The demo is an edge, not the decision core, which
stays free of randomness.

What the day holds, per workspace (profiles cycle: shop, food delivery, logistics, language
routing, VIP routing; `TrafficParams.families` can add routing by the contact's answer and by
shifts, so that a benchmark's stream covers every step type):
- setup at 00:00: `user.upserted` for every agent (some with a capacity), `team.upserted`,
  each agent's presence at midnight, and a `workflow.published` made from a template in
  `deploy/workflows/`, pointed at the workspace (durations shortened by the compression);
- `user.presence_changed` by shift: online at the shift's start (give or take a few minutes),
  away for a break in a long shift, sometimes away for a moment, offline at the end;
- conversations opened through the day with a day-shaped arrival rate (`conversation.opened`
  with a channel, often a contact snapshot with fields and tags), the contact writing
  (`message.received`), an agent on duty answering after a delay, or nobody answering at
  all, a few more exchanges, then `conversation.closed` by the agent; a contact whom nobody
  answers gives up after a while (`conversation.closed` without `closed_by`), and some
  conversations are still open at midnight.

The generator cannot know whom the service assigns (it is open loop, so a benchmark can build
the whole stream beforehand): `message.sent` and `closed_by` name an agent who is on duty at
that moment. The demo, which sees the assignments, replaces them with the real assignee when
it knows it (`handoff.demo.run`).
"""

import math
import random  # seeded traffic for the demo and the benchmark, not the core
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from handoff.core.durations import to_timedelta
from handoff.core.workflow import Workflow

__all__ = [
    "ALL_FAMILIES",
    "DAY",
    "DEFAULT_COMPRESSION",
    "TEMPLATES_DIR",
    "Agent",
    "CloudEvent",
    "Day",
    "Shift",
    "TrafficParams",
    "WorkspacePlan",
    "clock",
    "day_events",
    "simulate_day",
]

CloudEvent = dict[str, Any]
"""One input event as it goes on the wire (CloudEvents structured JSON, as a dict)."""

DAY = 86_400.0
"""Simulated seconds in the simulated day."""

DEFAULT_COMPRESSION = DAY / 75
"""Simulated seconds per wall second: the day in 75 s."""

_PACKAGED = Path(__file__).resolve().parent / "templates"
TEMPLATES_DIR = (
    _PACKAGED
    if _PACKAGED.is_dir()
    else Path(__file__).resolve().parents[3] / "deploy" / "workflows"
)
"""The workflow templates: copied into the package by a wheel build (`handoff/demo/templates`),
else the source tree's `deploy/workflows` (an editable install)."""

_HOUR = 3600.0
_MINUTE = 60.0
_SETUP_END = 5 * _MINUTE
"""Conversations open after this (or later, after a big setup): setup comes first."""


def clock(sim: float) -> str:
    """`HH:MM` of a simulated second (24:00 at the end of the day)."""
    minutes = int(sim // _MINUTE)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class Shift:
    """When an agent works, in simulated seconds after midnight; `end` past `DAY` means the
    shift runs past midnight (a night shift: on at 00:00, off in the morning, on again late)."""

    name: str
    start: float
    end: float

    @property
    def label(self) -> str:
        return f"{self.name} {clock(self.start)[:2]}-{clock(self.end % DAY)[:2]}"


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent and the presence changes of their day: (simulated second, status), the
    first at 0 (the status at midnight)."""

    user_id: str
    name: str
    teams: tuple[str, ...]
    shift: Shift
    role: str
    max_open_contacts: int | None
    presence: tuple[tuple[float, str], ...]

    def online_spans(self) -> list[tuple[float, float]]:
        """The [from, to) spans of the day this agent is online."""
        spans: list[tuple[float, float]] = []
        since: float | None = None
        for at, status in self.presence:
            if status == "online" and since is None:
                since = at
            elif status != "online" and since is not None:
                spans.append((since, at))
                since = None
        if since is not None:
            spans.append((since, DAY))
        return spans


@dataclass(frozen=True, slots=True)
class WorkspacePlan:
    """One workspace's cast and routing, as the day sets it up."""

    workspace_id: str
    business: str
    template: str
    agents: tuple[Agent, ...]
    teams: tuple[tuple[str, tuple[str, ...]], ...]
    workflow: dict[str, Any]
    shortened: tuple[str, ...]
    """What the compression shortened in the workflow, said in plain words."""


@dataclass(frozen=True, slots=True)
class TrafficParams:
    """What to simulate. `start` must be timezone-aware: it is the real time of 00:00."""

    start: datetime
    workspaces: int = 3
    agents_per_team: tuple[int, int] = (3, 5)
    """Agents in each team: drawn from this inclusive range, per team."""
    conversations_per_workspace: int = 150
    seed: int = 1
    compression: float = DEFAULT_COMPRESSION
    """Simulated seconds per wall second (1 keeps real durations)."""
    id_prefix: str = ""
    """Prepended to every event id, so several runs can share one event log."""
    workspace_suffix: str = ""
    """Appended to every workspace id, so several runs can share one database."""
    templates_dir: Path = TEMPLATES_DIR
    families: tuple[str, ...] = ()
    """The workspace families (profiles) to cycle through, by name; empty: the demo's five
    (acme, bistro, cargo, dune, ember). `ALL_FAMILIES` adds fjord (route-by-answer: a
    question) and gale (shifts: a schedule, and a jump outside the shifts)."""


@dataclass(frozen=True, slots=True)
class Day:
    """The simulated day: the workspaces' plans and every event, in time order."""

    params: TrafficParams
    workspaces: tuple[WorkspacePlan, ...]
    events: tuple[CloudEvent, ...]
    sim_times: tuple[float, ...]
    """The simulated second of each event (same index as `events`)."""

    def wall(self, sim: float) -> datetime:
        """The real time of a simulated second."""
        return self.params.start + timedelta(seconds=sim / self.params.compression)

    def sim(self, at: datetime) -> float:
        """The simulated second of a real time."""
        return (at - self.params.start).total_seconds() * self.params.compression


def day_events(params: TrafficParams) -> list[CloudEvent]:
    """Every input event of the simulated day, in non-decreasing `time` order (for a
    benchmark that only wants the stream)."""
    return list(simulate_day(params).events)


def simulate_day(params: TrafficParams) -> Day:
    """The whole day for `params`: deterministic for the same parameters."""
    if params.start.utcoffset() is None:
        raise ValueError("TrafficParams.start must be timezone-aware")
    if params.compression <= 0:
        raise ValueError("TrafficParams.compression must be positive")
    low, high = params.agents_per_team
    if not 1 <= low <= high:
        raise ValueError("TrafficParams.agents_per_team must be (low, high) with 1 <= low <= high")
    profiles = _profiles(params.families)
    plans: list[WorkspacePlan] = []
    pending: list[_Pending] = []
    for index in range(params.workspaces):
        rng = random.Random(f"handoff-demo/{params.seed}/{index}")
        profile = profiles[index % len(profiles)]
        round_ = index // len(profiles)
        workspace_id = profile.name + (f"-{round_ + 1}" if round_ else "")
        workspace_id += params.workspace_suffix
        plan = _plan(rng, profile, workspace_id, params)
        plans.append(plan)
        setup = _setup(plan, len(pending))
        pending += setup
        pending += _presence_events(plan, len(pending), after=setup[-1].sim + 1)
        opening = max(_SETUP_END, setup[-1].sim + 60)
        pending += _conversations(rng, profile, plan, params, len(pending), opening)
    pending.sort(key=lambda p: (p.sim, p.order))
    return Day(
        params=params,
        workspaces=tuple(plans),
        events=tuple(_materialize(pending, params)),
        sim_times=tuple(p.sim for p in pending if p.sim < DAY),
    )


# --- profiles --------------------------------------------------------------------------------


NIGHT = Shift("night", 22 * _HOUR, 30 * _HOUR)
EARLY = Shift("early", 6 * _HOUR, 14 * _HOUR)
LATE = Shift("late", 14 * _HOUR, 22 * _HOUR)


@dataclass(frozen=True, slots=True)
class _Special:
    """A user the template names (a placeholder such as `first-agent`), outside the teams."""

    placeholder: str
    role: str
    shift: Shift


@dataclass(frozen=True, slots=True)
class _Profile:
    name: str
    business: str
    template: str
    teams: tuple[str, ...]
    staffing: tuple[Shift, ...]
    """Shifts given to a team's agents in this order, cycling."""
    hourly: tuple[float, ...]
    """Relative arrival rate of each hour of the day."""
    capacity: tuple[int, int] | None
    reply_median: float
    reply_sigma: float
    silent: float
    """The share of conversations nobody ever answers."""
    texts: tuple[str, ...]
    special: _Special | None = None
    languages: tuple[tuple[str, float], ...] = (("en", 6.0), ("es", 2.0), ("fr", 1.0))
    vip_share: float = 0.06


# Relative arrival rates, hour by hour from 00:00.
# fmt: off
_SHOP_HOURS = (
    2, 1.5, 1, 1, 1, 1.5, 3, 5, 7, 8, 9, 9,  # 00-11
    8, 8, 9, 9, 8, 7, 7, 8, 8, 6, 4, 3,  # 12-23
)
_FOOD_HOURS = (
    1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.5, 1, 2, 3, 4, 8,  # 00-11
    10, 8, 4, 3, 4, 6, 9, 10, 8, 5, 3, 2,  # 12-23
)
_LOGISTICS_HOURS = (
    0.5, 0.3, 0.3, 0.3, 0.5, 1, 3, 6, 9, 10, 9, 8,  # 00-11
    6, 7, 8, 8, 7, 5, 3, 2, 1.5, 1, 0.8, 0.6,  # 12-23
)
_TRAVEL_HOURS = (
    0.5, 0.3, 0.3, 0.3, 0.5, 1, 2, 4, 6, 7, 8, 8,  # 00-11
    7, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1, 0.8,  # 12-23
)
_BANK_HOURS = (
    0.3, 0.2, 0.2, 0.2, 0.3, 0.5, 1, 3, 6, 8, 9, 9,  # 00-11
    8, 8, 9, 8, 7, 5, 3, 2, 1, 1, 0.5, 0.4,  # 12-23
)
# fmt: on

_PROFILES: tuple[_Profile, ...] = (
    _Profile(
        name="acme",
        business="online shop, open around the clock",
        template="round-robin-online-welcome",
        teams=("support",),
        staffing=(EARLY, LATE, NIGHT, EARLY, LATE),
        hourly=_SHOP_HOURS,
        capacity=None,
        reply_median=3 * _MINUTE,
        reply_sigma=0.9,
        silent=0.08,
        texts=(
            "Hi, where is my order #{n}?",
            "Can I return the shoes I bought last week?",
            "Do you ship to Portugal?",
            "My discount code does not work",
            "The package arrived damaged",
            "Is the blue jacket back in stock?",
        ),
    ),
    _Profile(
        name="bistro",
        business="food delivery, open 08:00-21:00, agents with a capacity",
        template="least-open-contacts-online",
        teams=("support",),
        staffing=(Shift("day", 8 * _HOUR, 15 * _HOUR), Shift("evening", 14 * _HOUR, 21 * _HOUR)),
        hourly=_FOOD_HOURS,
        capacity=(3, 5),
        reply_median=4 * _MINUTE,
        reply_sigma=1.0,
        silent=0.06,
        texts=(
            "My order is 30 minutes late",
            "I got the wrong pizza",
            "Can I add a drink to order #{n}?",
            "Are you open tonight?",
            "The app charged me twice",
        ),
    ),
    _Profile(
        name="cargo",
        business="logistics: a front desk takes every chat first",
        template="reassign-unanswered",
        teams=("support",),
        staffing=(Shift("early", 7 * _HOUR, 15 * _HOUR), Shift("late", 12 * _HOUR, 20 * _HOUR)),
        hourly=_LOGISTICS_HOURS,
        capacity=None,
        reply_median=9 * _MINUTE,
        reply_sigma=1.1,
        silent=0.12,
        texts=(
            "Tracking says delivered but nothing arrived",
            "Can I change the delivery address for #{n}?",
            "I need a quote for a pallet to Lyon",
            "When will the courier come?",
            "Customs is holding my parcel",
        ),
        special=_Special("first-agent", "front desk", Shift("office", 8 * _HOUR, 17 * _HOUR)),
    ),
    _Profile(
        name="dune",
        business="travel agency, routed by the contact's language",
        template="route-by-language",
        teams=("english", "spanish", "french"),
        staffing=(Shift("day", 8 * _HOUR, 16 * _HOUR), Shift("late", 13 * _HOUR, 21 * _HOUR)),
        hourly=_TRAVEL_HOURS,
        capacity=None,
        reply_median=5 * _MINUTE,
        reply_sigma=0.9,
        silent=0.08,
        texts=(
            "I want to change my flight",
            "Is breakfast included at the hotel?",
            "Can I get a refund for booking #{n}?",
        ),
        languages=(("en", 4.0), ("es", 3.0), ("fr", 2.0)),
    ),
    _Profile(
        name="ember",
        business="bank: VIP clients go to their dedicated agent",
        template="vip-dedicated-agent",
        teams=("support",),
        staffing=(Shift("day", 8 * _HOUR, 16 * _HOUR), Shift("late", 12 * _HOUR, 20 * _HOUR)),
        hourly=_BANK_HOURS,
        capacity=None,
        reply_median=4 * _MINUTE,
        reply_sigma=0.8,
        silent=0.05,
        texts=(
            "My card was declined",
            "I did not make payment #{n}",
            "How do I raise my transfer limit?",
        ),
        special=_Special(
            "vip-agent", "dedicated VIP agent", Shift("office", 9 * _HOUR, 18 * _HOUR)
        ),
        vip_share=0.15,
    ),
)

_MORE_PROFILES: tuple[_Profile, ...] = (
    _Profile(
        name="fjord",
        business="software vendor: the contact picks Sales or Support",
        template="route-by-answer",
        teams=("sales", "support"),
        staffing=(Shift("day", 8 * _HOUR, 17 * _HOUR), Shift("late", 12 * _HOUR, 20 * _HOUR)),
        hourly=_BANK_HOURS,
        capacity=None,
        reply_median=5 * _MINUTE,
        reply_sigma=0.9,
        silent=0.07,
        texts=(  # the first message answers the question, rightly or not
            "Sales",
            "support",
            "1",
            "2",
            " Support ",
            "I would like a demo of the product",
            "My licence #{n} expired",
        ),
    ),
    _Profile(
        name="gale",
        business="hotel chain: teams by shift (Madrid time), weekends jump to the morning team",
        template="shifts",
        teams=("morning", "afternoon", "night"),
        staffing=(EARLY, LATE, NIGHT),
        hourly=_TRAVEL_HOURS,
        capacity=None,
        reply_median=4 * _MINUTE,
        reply_sigma=0.9,
        silent=0.06,
        texts=(
            "Can I check in early?",
            "Is the spa open on Sunday?",
            "I left my charger in room #{n}",
            "Do you have parking?",
        ),
    ),
)

ALL_FAMILIES: tuple[str, ...] = tuple(p.name for p in (*_PROFILES, *_MORE_PROFILES))
"""Every workspace family, for `TrafficParams.families`: between them their templates use
every workflow step type."""


def _profiles(families: Sequence[str]) -> tuple[_Profile, ...]:
    if not families:
        return _PROFILES
    known = {p.name: p for p in (*_PROFILES, *_MORE_PROFILES)}
    unknown = [f for f in families if f not in known]
    if unknown:
        raise ValueError(f"TrafficParams.families: unknown {unknown}; known: {list(known)}")
    return tuple(known[f] for f in families)


_NAMES = (
    "ann", "bob", "cid", "dee", "eli", "fay", "gus", "hal", "ivy", "jon", "kim", "lou", "max",
    "ned", "ola", "pia", "ray", "sue", "tom", "uma", "vic", "wes", "xia", "yan", "zoe", "ada",
    "ben", "cal", "dot", "eva", "fin", "gil", "hugo", "ines", "jay", "kai", "lea", "mia", "noa",
    "otto",
)  # fmt: skip
_CHANNELS = ("whatsapp", "messenger", "webchat", "instagram")
_CHANNEL_WEIGHTS = (5.0, 2.0, 3.0, 1.0)
_FOLLOW_UPS = (
    "Thanks, and one more thing",
    "Ok, the order number is {n}",
    "Could you check again please?",
    "Great, and what about the invoice?",
)
_NUDGES = ("Hello? Anyone there?", "Any news?", "?")
_GREETINGS = {"es": "Hola, necesito ayuda", "fr": "Bonjour, j'ai besoin d'aide"}


# --- the plan --------------------------------------------------------------------------------


def _plan(
    rng: random.Random, profile: _Profile, workspace_id: str, params: TrafficParams
) -> WorkspacePlan:
    names = list(_NAMES)
    rng.shuffle(names)
    pool: Iterator[str] = iter(names + [f"agent-{i}" for i in range(1, 1000)])
    agents: list[Agent] = []
    teams: list[tuple[str, tuple[str, ...]]] = []
    for team in profile.teams:
        members: list[str] = []
        for i in range(rng.randint(*params.agents_per_team)):
            shift = profile.staffing[i % len(profile.staffing)]
            user = next(pool)
            capacity = rng.randint(*profile.capacity) if profile.capacity else None
            colleague = sum(a.shift == shift for a in agents)
            day = _day_of(rng, shift, colleague)
            agents.append(Agent(user, user.capitalize(), (team,), shift, "agent", capacity, day))
            members.append(user)
        teams.append((team, tuple(members)))
    placeholders: dict[str, str] = {}
    if profile.special is not None:
        user = next(pool)
        special = profile.special
        agents.append(
            Agent(
                user,
                user.capitalize(),
                (),
                special.shift,
                special.role,
                None,
                _day_of(rng, special.shift),
            )
        )
        placeholders[special.placeholder] = user
    workflow, shortened = _workflow(profile.template, workspace_id, placeholders, params)
    return WorkspacePlan(
        workspace_id=workspace_id,
        business=profile.business,
        template=profile.template,
        agents=tuple(agents),
        teams=tuple(teams),
        workflow=workflow,
        shortened=shortened,
    )


def _day_of(rng: random.Random, shift: Shift, colleague: int = 0) -> tuple[tuple[float, str], ...]:
    """An agent's presence changes through the day: on a little early or late, a break in a
    long shift, sometimes away for a moment, off around the shift's end. The `colleague`-th
    agent of a shift takes the break at another time than the ones before, as teams do."""
    on = shift.start + rng.uniform(-10, 15) * _MINUTE
    off = shift.end + rng.uniform(-5, 20) * _MINUTE
    changes: list[tuple[float, str]] = []
    if off > DAY:  # last night's shift is still on at midnight
        morning = off - DAY
        pause = rng.uniform(1.5, 3.5) * _HOUR
        changes += [(0.0, "online"), (pause, "away"), (pause + 20 * _MINUTE, "online")]
        changes += [(morning, "offline"), (on, "online")]
        return tuple(changes)
    changes += [(0.0, "offline"), (on, "online")]
    busy: list[tuple[float, float]] = []
    if off - on >= 6 * _HOUR:
        lunch = (on + off) / 2 + ((colleague % 3 - 1) * 50 + rng.uniform(-8, 8)) * _MINUTE
        busy.append((lunch, lunch + rng.uniform(25, 40) * _MINUTE))
    if rng.random() < 0.3:
        moment = rng.uniform(on + _HOUR, off - _HOUR)
        span = (moment, moment + rng.uniform(8, 20) * _MINUTE)
        if all(span[1] < a or span[0] > b for a, b in busy):
            busy.append(span)
    for start, end in sorted(busy):
        changes += [(start, "away"), (end, "online")]
    changes.append((off, "offline"))
    return tuple(changes)


def _workflow(
    template: str, workspace_id: str, placeholders: Mapping[str, str], params: TrafficParams
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The template pointed at the workspace, its placeholder users replaced, and each
    duration divided by the compression (whole seconds, at least 1 s), said in `shortened`."""
    path = params.templates_dir / f"{template}.yaml"
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["workspace_id"] = workspace_id
    shortened: list[str] = []

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "user_id" and isinstance(value, str):
                out[key] = placeholders.get(value, value)
            elif key in ("duration", "timeout") and isinstance(value, str):
                out[key] = _shorten(value, params.compression, template, key, shortened)
            else:
                out[key] = rewrite(value)
        return out

    document = rewrite(document)
    Workflow.model_validate(document)  # a broken template fails here, not in the service
    return document, tuple(shortened)


def _shorten(value: str, compression: float, template: str, key: str, said: list[str]) -> str:
    seconds = to_timedelta(value).total_seconds()
    if compression <= 1 or seconds == 0:
        return value
    short = max(1, math.ceil(seconds / compression))
    said.append(
        f"{template}: {key} {value} -> {short}s "
        f"(about {_span(short * compression)} of simulated time)"
    )
    return f"{short}s"


def _span(seconds: float) -> str:
    minutes = round(seconds / _MINUTE)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"


# --- events ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    """An event before it has an id and a real time."""

    sim: float
    order: int
    workspace_id: str
    type: str
    data: dict[str, Any]
    subject: str | None = None
    source: str = "/demo/inbox"


def _setup(plan: WorkspacePlan, order: int) -> list[_Pending]:
    """Users, teams and the workflow, a simulated second apart from 00:00 on; the presence
    at midnight comes with `_presence_events`."""
    ws = plan.workspace_id
    out: list[_Pending] = []

    def add(type_: str, data: dict[str, Any], source: str = "/demo/admin") -> None:
        out.append(_Pending(float(len(out)), order + len(out), ws, type_, data, source=source))

    for agent in plan.agents:
        data: dict[str, Any] = {"user_id": agent.user_id, "name": agent.name}
        if agent.max_open_contacts is not None:
            data["max_open_contacts"] = agent.max_open_contacts
        add("user.upserted", data)
    for team, members in plan.teams:
        add("team.upserted", {"team_id": team, "name": team.capitalize(), "members": list(members)})
    add("workflow.published", {"definition": plan.workflow})
    return out


def _presence_events(plan: WorkspacePlan, order: int, after: float) -> list[_Pending]:
    """Each agent's presence changes; the status at midnight is said at `after`, once the
    users exist."""
    out: list[_Pending] = []
    for agent in plan.agents:
        for at, status in agent.presence:
            sim = max(at, after)
            data = {"user_id": agent.user_id, "status": status}
            out.append(
                _Pending(sim, order + len(out), plan.workspace_id, "user.presence_changed", data)
            )
    return out


@dataclass(slots=True)
class _Contact:
    contact_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    free_at: float | None = None
    """When the contact's last conversation closed (None: still open)."""


def _conversations(
    rng: random.Random,
    profile: _Profile,
    plan: WorkspacePlan,
    params: TrafficParams,
    order: int,
    opening: float,
) -> list[_Pending]:
    """The day's conversations, none opened before `opening` (setup is done by then)."""
    ws = plan.workspace_id
    out: list[_Pending] = []
    hours = rng.choices(range(24), weights=profile.hourly, k=params.conversations_per_workspace)
    opens = sorted(max(opening, h * _HOUR + rng.uniform(0, _HOUR)) for h in hours)
    contacts: list[_Contact] = []
    shifts = {a.user_id: a.online_spans() for a in plan.agents}
    spans = [span for user_spans in shifts.values() for span in user_spans]
    messages = iter(range(1, 10**9))

    def add(sim: float, type_: str, data: dict[str, Any], contact: str) -> None:
        out.append(_Pending(sim, order + len(out), ws, type_, data, subject=contact))

    def message_id() -> str:
        return f"{ws}-m{next(messages):05d}"

    for number, opened in enumerate(opens, 1):
        contact = _contact_for(rng, profile, contacts, opened)
        conversation_id = f"cv-{number:04d}"
        ids = {"contact_id": contact.contact_id, "conversation_id": conversation_id}
        data: dict[str, Any] = {
            **ids,
            "source": "contact",
            "channel": rng.choices(_CHANNELS, weights=_CHANNEL_WEIGHTS)[0],
        }
        if contact.fields or contact.tags or rng.random() < 0.5:
            data["contact"] = {"fields": dict(contact.fields), "tags": list(contact.tags)}
        add(opened, "conversation.opened", data, contact.contact_id)

        first = opened + rng.uniform(3, 30)
        text = _GREETINGS.get(str(contact.fields.get("language")), "")
        text = text or rng.choice(profile.texts)
        received = {
            **ids,
            "message_id": message_id(),
            "text": text.format(n=rng.randint(1000, 9999)),
        }
        add(first, "message.received", received, contact.contact_id)

        patience = rng.uniform(45 * _MINUTE, 5 * _HOUR)
        available = _available(spans, first)
        reply: float | None = None
        if rng.random() >= profile.silent and available is not None:
            reply = available + rng.lognormvariate(
                math.log(profile.reply_median), profile.reply_sigma
            )
        nudge_at = first + rng.uniform(40, 240)
        if rng.random() < 0.3 and (reply is None or reply > nudge_at):
            nudge = {**ids, "message_id": message_id(), "text": rng.choice(_NUDGES)}
            add(nudge_at, "message.received", nudge, contact.contact_id)
        if reply is None or reply - opened > patience:
            # Nobody answered in time: the contact gives up, or the chat is left open.
            if rng.random() < 0.9:
                closed = opened + patience
                add(closed, "conversation.closed", ids, contact.contact_id)
                contact.free_at = closed
            continue

        agent = _on_duty(rng, shifts, reply)
        sent = {**ids, "message_id": message_id(), "sender": {"type": "user", "user_id": agent}}
        add(reply, "message.sent", sent, contact.contact_id)
        last = reply
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            last += rng.uniform(30, 10 * _MINUTE)
            text = rng.choice(_FOLLOW_UPS).format(n=rng.randint(1000, 9999))
            add(
                last,
                "message.received",
                {**ids, "message_id": message_id(), "text": text},
                contact.contact_id,
            )
            last += rng.lognormvariate(math.log(90), 0.8)
            answer = {
                **ids,
                "message_id": message_id(),
                "sender": {"type": "user", "user_id": agent},
            }
            add(last, "message.sent", answer, contact.contact_id)
        if rng.random() < 0.97:
            closed = last + rng.uniform(2, 25) * _MINUTE
            add(closed, "conversation.closed", {**ids, "closed_by": agent}, contact.contact_id)
            contact.free_at = closed
    return out


def _contact_for(
    rng: random.Random, profile: _Profile, contacts: list[_Contact], at: float
) -> _Contact:
    """Now and then a returning contact (whose last conversation has closed), else a new one,
    half of them with fields (language, plan) and some with tags."""
    returning = [c for c in contacts if c.free_at is not None and c.free_at < at]
    if returning and rng.random() < 0.12:
        contact = rng.choice(returning)
        contact.free_at = None
        if "returning" not in contact.tags:
            contact.tags.append("returning")
        return contact
    contact = _Contact(f"ct-{len(contacts) + 1:04d}")
    if rng.random() < 0.6:
        languages, weights = zip(*profile.languages, strict=True)
        contact.fields["language"] = rng.choices(languages, weights=weights)[0]
        contact.fields["plan"] = rng.choice(("free", "free", "pro"))
        if rng.random() < profile.vip_share:
            contact.tags.append("vip")
            contact.fields["tier"] = "vip"
    contacts.append(contact)
    return contact


def _available(spans: Sequence[tuple[float, float]], at: float) -> float | None:
    """The first moment from `at` on when some agent of the workspace is online."""
    later = [start for start, end in spans if end > at]
    if any(start <= at < end for start, end in spans):
        return at
    return min(later) if later else None


def _on_duty(
    rng: random.Random, shifts: Mapping[str, Sequence[tuple[float, float]]], at: float
) -> str:
    """An agent online at `at` (any agent if none is): whom the generator has answer."""
    online = [user for user, spans in shifts.items() if any(s <= at < e for s, e in spans)]
    return rng.choice(online or list(shifts))


def _materialize(pending: Sequence[_Pending], params: TrafficParams) -> Iterator[CloudEvent]:
    """Ids (per workspace, in time order) and real times; what falls after 24:00 is dropped:
    the day ends, and whatever was still going on is left as it stands."""
    numbers: dict[str, int] = {}
    for p in pending:
        if p.sim >= DAY:
            continue
        n = numbers[p.workspace_id] = numbers.get(p.workspace_id, 0) + 1
        at = params.start + timedelta(seconds=p.sim / params.compression)
        event: CloudEvent = {
            "specversion": "1.0",
            "id": f"{params.id_prefix}{p.workspace_id}-{n:05d}",
            "source": p.source,
            "type": p.type,
            "time": at.isoformat(timespec="microseconds"),
            "workspaceid": p.workspace_id,
        }
        if p.subject is not None:
            event["subject"] = p.subject
        event["datacontenttype"] = "application/json"
        event["data"] = p.data
        yield event
