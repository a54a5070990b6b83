"""The JSON Schemas in `schemas/`: the contract's machine-readable form, generated from code.

They are rendered from the same pydantic models the service validates and emits with, so the
published schemas cannot drift from what the service does. `tests/test_schemas.py` fails when
the files are stale; `python -m handoff.schema_files` rewrites them.
"""

import json
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode

from handoff.core.envelope import OutputEnvelope
from handoff.core.events import OUTPUT_TOPIC_OF, Decision
from handoff.core.inputs import INPUT_TYPES
from handoff.core.timers import TimerElapsed
from handoff.core.workflow import Workflow

__all__ = ["DeadLettered", "render", "write"]


# Mirrors the dict `handoff.adapters.cloudevents.dead_letter` builds; a test keeps them agreeing.
class DeadLetteredData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str
    topic: str
    partition: int
    offset: int
    original: str | None = Field(description="the bytes as text; null if none or not UTF-8")
    original_base64: str | None = Field(description="the record's bytes; null if it had none")


class DeadLettered(BaseModel):
    """An input record that could not be accepted: its bytes, where it was, and why."""

    model_config = ConfigDict(extra="forbid")

    specversion: Literal["1.0"]
    id: str
    source: str
    type: Literal["record.deadlettered"]
    time: AwareDatetime
    workspaceid: str
    causationid: str
    datacontenttype: Literal["application/json"]
    data: DeadLetteredData


def _decisions() -> dict[str, type[OutputEnvelope]]:
    """Every decision model (outputs and run events) by its type string."""
    models = get_args(get_args(Decision)[0])
    return {model.model_fields["type"].default: model for model in models}


def _schema(model: type[BaseModel], mode: JsonSchemaMode, title: str) -> dict[str, Any]:
    return {**model.model_json_schema(mode=mode), "title": title}


def render() -> dict[str, str]:
    """Each schema file's content by its path under `schemas/`."""
    schemas: dict[str, dict[str, Any]] = {
        f"events/in/{type_}.schema.json": _schema(model, "validation", type_)
        for type_, model in INPUT_TYPES.items()
    }
    for type_, model in _decisions().items():
        kind = "out" if type_ in OUTPUT_TOPIC_OF else "log"
        schemas[f"events/{kind}/{type_}.schema.json"] = _schema(model, "serialization", type_)
    schemas["events/log/timer.elapsed.schema.json"] = _schema(
        TimerElapsed, "serialization", "timer.elapsed"
    )
    schemas["events/out/record.deadlettered.schema.json"] = _schema(
        DeadLettered, "serialization", "record.deadlettered"
    )
    schemas["workflow.schema.json"] = Workflow.model_json_schema(mode="validation")
    return {
        path: json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for path, schema in sorted(schemas.items())
    }


def write(root: Path) -> list[str]:
    """Write the rendered schemas under `root`; return the paths whose content changed."""
    changed = []
    for path, content in render().items():
        target = root / path
        if not target.exists() or target.read_text() != content:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            changed.append(path)
    return changed


if __name__ == "__main__":
    changed = write(Path(__file__).resolve().parents[2] / "schemas")
    print("\n".join(f"wrote schemas/{path}" for path in changed) or "schemas/ is up to date")
