"""The routing index: per team, the members a decision may pick, already in each logic's order.

A decision that looked at every member cost O(team): issue 14 measured 1.9 ms and 42 KB of
explanation per conversation in teams of 500, and a 2 MB `contact.assigned` over 20,000
users. Here every team (and the workspace) keeps a `Pool` per (online only?, skill) of the
members who are known and under their own `max_open_contacts`, ordered three ways: by turn
(team order, for round robin), by open contacts, and by last assignment (longest idle). A
decision bisects to the cursor and walks only the members it passes over.

The index is derived, like a database index: built from the view's rows when first asked for
(`WorkspaceView.pools`) and kept in step by `follow` with every row a fold changes. It is not
stored; the rows it is built from are. A model-based test checks it against a recomputation
from the rows after any sequence of inputs.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sortedcontainers import SortedList

from handoff.core.ids import TeamId, UserId

if TYPE_CHECKING:
    from handoff.core.view import WorkspaceView

__all__ = [
    "WORKSPACE",
    "Pool",
    "PoolKey",
    "Pools",
    "Rank",
    "Roster",
    "Standing",
    "from_cursor",
    "member",
    "standing_of",
]

WORKSPACE = ""
"""The roster key of `assign_to: {workspace: true}` (no team id is empty)."""

Rank = tuple[int, str]
"""A member's place in turn order: (index in the team's members, user id); in the workspace,
whose order is by user id, (0, user id)."""


def member(rank: Rank) -> UserId:
    return UserId(rank[1])


PoolKey = tuple[bool, frozenset[str]]
"""(online only, the skills every member holds; empty: any): which members a pool holds."""

Order = Literal["load", "idle"]
"""A pool's orders besides turn: by open contacts, by last assignment."""

_FOLLOWED = frozenset({"users", "presence", "open_contacts", "last_assigned"})
"""The tables a member's standing is made of."""


@dataclass(frozen=True, slots=True)
class Standing:
    """What places a user in pools, and where in them."""

    known: bool
    online: bool
    capable: bool
    """Known, and under their own `max_open_contacts`."""
    skills: frozenset[str]
    load: int
    idle: int
    """The log position of their last assignment (`LastAssignment.seq`); 0: never."""

    def fits(self, key: PoolKey) -> bool:
        online_only, skills = key
        return self.capable and (self.online or not online_only) and skills <= self.skills

    def value(self, order: Order) -> int:
        return self.load if order == "load" else self.idle

    def with_load(self, load: int, idle: int, limit: int | None) -> "Standing":
        capable = self.known and (limit is None or load < limit)
        return Standing(self.known, self.online, capable, self.skills, load, idle)


def standing_of(view: "WorkspaceView", user_id: UserId) -> Standing:
    user = view.users.get(user_id)
    load = view.open_contacts.get(user_id, 0)
    last = view.last_assigned.get(user_id)
    return Standing(
        known=user is not None,
        online=view.presence.get(user_id) == "online",
        capable=user is not None
        and (user.max_open_contacts is None or load < user.max_open_contacts),
        skills=frozenset(user.skills) if user is not None else frozenset(),
        load=load,
        idle=last.seq if last is not None else 0,
    )


def from_cursor(ranks: "SortedList[Rank]", cursor: Rank | None) -> Iterator[Rank]:
    """Each rank once: those after the cursor, then from the top (wrapping); a cursor that
    is no longer among them starts where it would stand."""
    if cursor is None:
        yield from ranks
        return
    yield from ranks.irange(minimum=cursor, inclusive=(False, True))
    yield from ranks.irange(maximum=cursor)


class Pool:
    """Members eligible by presence, capacity and skills: in turn order, and in the orders
    by load or idle time once a logic has asked for them (`ordered`)."""

    __slots__ = ("by_turn", "orders", "standing")

    def __init__(self, standing: dict[UserId, Standing]) -> None:
        self.by_turn: SortedList[Rank] = SortedList()
        self.orders: dict[Order, SortedList[tuple[int, Rank]]] = {}
        self.standing = standing
        """The workspace's standings (`Pools.standing`), shared: what an order is built of."""

    def add(self, rank: Rank, standing: Standing) -> None:
        self.by_turn.add(rank)
        for order, members in self.orders.items():
            members.add((standing.value(order), rank))

    def remove(self, rank: Rank, standing: Standing) -> None:
        self.by_turn.remove(rank)
        for order, members in self.orders.items():
            members.remove((standing.value(order), rank))

    def move(self, rank: Rank, old: Standing, new: Standing) -> None:
        for order, members in self.orders.items():
            before, after = old.value(order), new.value(order)
            if before != after:
                members.remove((before, rank))
                members.add((after, rank))

    def ordered(self, order: Order) -> SortedList[tuple[int, Rank]]:
        members = self.orders.get(order)
        if members is None:
            members = self.orders[order] = SortedList(
                (self.standing[member(rank)].value(order), rank) for rank in self.by_turn
            )
        return members

    def __len__(self) -> int:
        return len(self.by_turn)


class Roster:
    """One team's members (or the workspace's users) in turn order, and their pools.

    A pool is made when a step first asks for it (by presence and skills: a step needing
    `es` and `billing` finds those who hold both without walking those who hold one) and
    kept from then on; members move only in the pools and orders that exist."""

    __slots__ = ("order", "pools", "rank_of", "standing")

    def __init__(self, standing: dict[UserId, Standing]) -> None:
        self.order: SortedList[Rank] = SortedList()
        self.rank_of: dict[UserId, Rank] = {}
        self.pools: dict[PoolKey, Pool] = {}
        self.standing = standing
        """The workspace's standings (`Pools.standing`), shared."""

    def join(self, rank: Rank, standing: Standing) -> None:
        self.order.add(rank)
        self.rank_of[member(rank)] = rank
        self.place(rank, None, standing)

    def leave(self, rank: Rank, standing: Standing) -> None:
        self.order.remove(rank)
        del self.rank_of[member(rank)]
        self.place(rank, standing, None)

    def place(self, rank: Rank, old: Standing | None, new: Standing | None) -> None:
        """Move a member from the pools of its old standing to those of its new."""
        for key, pool in self.pools.items():
            was = old.fits(key) if old is not None else False
            now = new.fits(key) if new is not None else False
            if was and now and old is not None and new is not None:
                pool.move(rank, old, new)
            elif was and old is not None:
                pool.remove(rank, old)
            elif now and new is not None:
                pool.add(rank, new)

    def pool(self, online_only: bool, skills: Iterable[str] = ()) -> Pool | None:
        """The members holding every one of `skills` (and online, if asked): None if none."""
        key = (online_only, frozenset(skills))
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = Pool(self.standing)
            for user_id, rank in self.rank_of.items():
                standing = self.standing[user_id]
                if standing.fits(key):
                    pool.add(rank, standing)
        return pool if pool else None

    def turn_from(self, cursor: Rank | None) -> Iterator[Rank]:
        """Every member once in turn order: after the cursor, then from the top (wrapping)."""
        return from_cursor(self.order, cursor)

    def between(self, cursor: Rank | None, rank: Rank) -> int:
        """How many members lie strictly between the cursor and `rank` in turn order."""
        at = self.order.index(rank)
        if cursor is None:
            return at
        after = self.order.bisect_right(cursor)
        return at - after if at >= after else len(self.order) - after + at


class Pools:
    """Every roster of a workspace: one per team, and `rosters[WORKSPACE]` of every known
    user, made only once a `workspace: true` step asks for it (most workspaces route by
    team, and keeping it costs every change of every user)."""

    __slots__ = ("rosters", "standing", "teams_of")

    def __init__(self) -> None:
        self.rosters: dict[str, Roster] = {}
        self.standing: dict[UserId, Standing] = {}
        self.teams_of: dict[UserId, set[str]] = {}

    @classmethod
    def of(cls, view: "WorkspaceView") -> "Pools":
        pools = cls()
        for user_id in view.users:
            pools._refresh_user(view, user_id)
        for team_id in view.teams:
            pools._refresh_team(view, team_id)
        return pools

    def roster(self, team_id: str | None) -> Roster | None:
        if team_id is not None:
            return self.rosters.get(team_id)
        workspace = self.rosters.get(WORKSPACE)
        if workspace is None:
            workspace = self.rosters[WORKSPACE] = Roster(self.standing)
            for user_id, standing in self.standing.items():
                if standing.known:
                    workspace.join((0, user_id), standing)
        return workspace

    def follow(self, view: "WorkspaceView", changed: Iterable[tuple[str, str]]) -> None:
        users: set[UserId] = set()
        for table, key in changed:
            if table == "teams":
                self._refresh_team(view, key)
            elif table in _FOLLOWED:
                users.add(UserId(key))
        for user_id in users:
            self._refresh_user(view, user_id)

    def shift(self, view: "WorkspaceView", user_id: UserId, load: int, idle: int) -> None:
        """Place a user as a decision in progress left them (`DecisionContext`): the very
        standing folding its decisions will give them, so the fold then finds nothing to do."""
        user = view.users.get(user_id)
        limit = user.max_open_contacts if user is not None else None
        standing = self.standing.get(user_id) or standing_of(view, user_id)
        self._move(user_id, standing.with_load(load, idle, limit))

    def _refresh_user(self, view: "WorkspaceView", user_id: UserId) -> None:
        self._move(user_id, standing_of(view, user_id))

    def _move(self, user_id: UserId, new: Standing) -> None:
        old = self.standing.get(user_id)
        if new == old:
            return
        workspace = self.rosters.get(WORKSPACE)
        if workspace is not None:
            rank: Rank = (0, user_id)
            if old is not None and old.known:
                if new.known:
                    workspace.place(rank, old, new)
                else:
                    workspace.leave(rank, old)
            elif new.known:
                workspace.join(rank, new)
        for team_id in self.teams_of.get(user_id, ()):
            roster = self.rosters[team_id]
            roster.place(roster.rank_of[user_id], old, new)
        if new.known or user_id in self.teams_of:
            self.standing[user_id] = new
        else:
            self.standing.pop(user_id, None)

    def _refresh_team(self, view: "WorkspaceView", team_id: str) -> None:
        """Build the team's roster afresh (a team change names every member anyway)."""
        old = self.rosters.pop(team_id, None)
        for user_id in old.rank_of if old is not None else ():
            teams = self.teams_of[user_id]
            teams.discard(team_id)
            if not teams:
                del self.teams_of[user_id]
                if not self.standing[user_id].known:
                    del self.standing[user_id]
        team = view.teams.get(TeamId(team_id))
        if team is None:
            return
        roster = self.rosters[team_id] = Roster(self.standing)
        for index, user_id in enumerate(team.members):
            standing = self.standing.get(user_id)
            if standing is None:
                standing = self.standing[user_id] = standing_of(view, user_id)
            roster.join((index, user_id), standing)
            self.teams_of.setdefault(user_id, set()).add(team_id)
        for key, pool in old.pools.items() if old is not None else ():
            roster.pool(*key)  # the pools and orders steps asked of the team before
            for order in pool.orders:
                roster.pools[key].ordered(order)
