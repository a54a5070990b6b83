"""Identifiers, and the one way new ids are made: derived from what caused them.

Deriving ids (uuid5 of the cause and the output's position) instead of drawing random ones is
what lets a re-sent output carry the id it had the first time, so consumers can dedupe on it.
"""

from typing import NewType
from uuid import NAMESPACE_URL, uuid5

WorkspaceId = NewType("WorkspaceId", str)
UserId = NewType("UserId", str)
TeamId = NewType("TeamId", str)
ContactId = NewType("ContactId", str)
ConversationId = NewType("ConversationId", str)
WorkflowId = NewType("WorkflowId", str)
RunId = NewType("RunId", str)

_NAMESPACE = uuid5(NAMESPACE_URL, "https://handoff.dev/ids")

__all__ = [
    "ContactId",
    "ConversationId",
    "RunId",
    "TeamId",
    "UserId",
    "WorkflowId",
    "WorkspaceId",
    "derive_id",
]


def derive_id(*parts: str | int) -> str:
    """A stable id for the thing named by `parts` (e.g. cause id and output index)."""
    return str(uuid5(_NAMESPACE, "\x1f".join(str(p) for p in parts)))
