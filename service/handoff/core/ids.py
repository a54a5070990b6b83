"""Identifiers, and the one way new ids are made: derived from what caused them.

Deriving ids (uuid5 of the cause and the output's position) instead of drawing random ones is
what lets a re-sent output carry the id it had the first time, so consumers can dedupe on it.
"""

from hashlib import sha1
from typing import Annotated, NewType
from uuid import NAMESPACE_URL, uuid5

from pydantic import Field

WorkspaceId = NewType("WorkspaceId", str)
UserId = NewType("UserId", str)
TeamId = NewType("TeamId", str)
ContactId = NewType("ContactId", str)
ConversationId = NewType("ConversationId", str)
WorkflowId = NewType("WorkflowId", str)
RunId = NewType("RunId", str)

MAX_SKILLS = 100
"""Skills one user holds or one step requires, at most."""
MAX_SKILL_LENGTH = 100
Skill = Annotated[str, Field(min_length=1, max_length=MAX_SKILL_LENGTH)]
"""A skill (v1.1): a language, a product, a tier; compared as written."""

_NAMESPACE = uuid5(NAMESPACE_URL, "https://handoff.dev/ids")
_PREFIX = _NAMESPACE.bytes
_VERSION_BITS = ~(0xF000 << 64 | 0xC000 << 48)
_VERSION_5 = 0x5000 << 64 | 0x8000 << 48
"""Version 5 and the RFC 4122 variant, in the places `uuid.UUID(..., version=5)` puts them."""

__all__ = [
    "MAX_SKILLS",
    "MAX_SKILL_LENGTH",
    "ContactId",
    "ConversationId",
    "RunId",
    "Skill",
    "TeamId",
    "UserId",
    "WorkflowId",
    "WorkspaceId",
    "derive_id",
]


def derive_id(*parts: str | int) -> str:
    """A stable id for the thing named by `parts` (e.g. cause id and output index): the
    RFC 4122 version-5 UUID of `uuid.uuid5`, made without its UUID object, which cost
    more than the hash on every output."""
    digest = sha1(_PREFIX + "\x1f".join(map(str, parts)).encode()).digest()
    h = (int.from_bytes(digest[:16]) & _VERSION_BITS | _VERSION_5).to_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
