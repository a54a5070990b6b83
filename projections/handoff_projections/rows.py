"""How a projection row is stored: JSON of the row type that `WorkspaceView` declares.

The types come from the view's own annotations, so a new table needs no codec of its own.
"""

import typing
from typing import Any

from pydantic import TypeAdapter

from handoff.core.durations import AS_STORED
from handoff.core.view import WorkspaceView

__all__ = ["dump_row", "load_row", "row_value"]

_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(typing.get_args(hint)[1])
    for name, hint in typing.get_type_hints(WorkspaceView).items()
    if typing.get_origin(hint) is dict
}


def row_value(view: WorkspaceView, table: str, key: str) -> Any:
    """The row as it is now, or None when the fold deleted it."""
    rows: dict[str, Any] = getattr(view, table)
    return rows.get(key)


def dump_row(table: str, value: Any) -> bytes:
    return _ADAPTERS[table].dump_json(value)


def load_row(view: WorkspaceView, table: str, key: str, raw: str | bytes) -> None:
    rows: dict[str, Any] = getattr(view, table)
    rows[key] = _ADAPTERS[table].validate_json(raw, context=AS_STORED)
    view.follow([(table, key)])
