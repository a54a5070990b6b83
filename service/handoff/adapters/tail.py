"""`handoff events tail`: the output topics, one readable line per event."""

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

__all__ = ["describe", "tail"]


def describe(event: dict[str, Any]) -> str:
    """One line a person can scan: when, what, where, and the gist of the data."""
    data = event.get("data", {})
    head = f"{event.get('time', '?')[:19]}  {event.get('workspaceid', '-'):<10} {event.get('type')}"
    contact = data.get("contact_id")
    match event.get("type"):
        case "contact.assigned":
            team = f" in {data['team_id']}" if data.get("team_id") else ""
            body = f"{contact} -> {data['assignee_id']} ({data['strategy']}{team})"
        case "contact.unassigned":
            body = f"{contact} (was {data['previous_assignee_id']})"
        case "assignment.queued":
            waiting = [
                f"{c['user_id']}: {c['reason']}"
                for c in data["explanation"]["candidates"]
                if not c["eligible"]
            ]
            queue = data.get("team_id") or "the workspace"
            body = f"{contact} waits for {queue} ({'; '.join(waiting)})"
        case "assignment.failed":
            body = f"{contact} {data['reason']}"
        case "comment.created":
            mentions = " ".join(f"@{m}" for m in data.get("mentions", []))
            body = f"{contact} note: {data['text']!r} {mentions}".rstrip()
        case "message.requested":
            body = f"{contact} say: {data['text']!r}"
        case "record.deadlettered":
            body = f"{data['topic']}[{data['partition']}]@{data['offset']}: {data['reason']}"
        case _:
            body = orjson.dumps(data).decode()
    return f"{head:<60} {body}"


async def tail(
    bootstrap: str,
    topics: list[str],
    from_beginning: bool,
    raw: bool,
    idle_timeout: float | None,
    options: dict[str, Any],
) -> None:
    consumer = AIOKafkaConsumer(
        *topics,
        **options,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    try:
        idle = 0.0
        while idle_timeout is None or idle < idle_timeout:
            polled = await consumer.getmany(timeout_ms=500)
            idle = 0.0 if polled else idle + 0.5
            for messages in polled.values():
                for m in messages:
                    event = orjson.loads(m.value)
                    print(m.value.decode() if raw else describe(event), flush=True)
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
