"""The JSON Schemas and the AsyncAPI document in `schemas/`: the contract's machine-readable form.

They are rendered from the same pydantic models the service validates and emits with, so the
published schemas cannot drift from what the service does. `schemas/asyncapi.yaml` (AsyncAPI
3.0.0) lays the same event schemas out by topic. `tests/test_schemas.py` and
`tests/test_asyncapi.py` fail when the files are stale; `python -m handoff.schema_files` rewrites
them.
"""

import copy
import json
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode

from handoff import __version__
from handoff.adapters.kafka_send import input_topic_for
from handoff.app.settings import Settings
from handoff.core.envelope import OutputEnvelope
from handoff.core.events import OUTPUT_TOPIC_OF, Decision
from handoff.core.inputs import INPUT_TYPES
from handoff.core.timers import TimerElapsed
from handoff.core.workflow import Workflow

__all__ = ["DEAD_LETTER_TYPE", "DeadLettered", "asyncapi", "render", "write"]

DEAD_LETTER_TYPE = "record.deadlettered"


# Mirrors the dict `handoff.adapters.cloudevents.dead_letter` builds; a test keeps them agreeing.
class DeadLetteredData(BaseModel):
    """Why, where from, and the original: its first 16 KiB (all of it when not `truncated`),
    its size and SHA-256. The whole dead letter stays under 64 KiB (contract v1.1)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        description="why it was refused, every problem at its path; at most 4 KiB as JSON, "
        "saying how many problems (or characters) were left out past that"
    )
    topic: str
    partition: int
    offset: int
    original: str | None = Field(
        description="the bytes of `original_base64` as text, up to the last whole character; "
        "null if none, not UTF-8, or over 32 KiB as JSON (mostly control characters)"
    )
    original_base64: str | None = Field(
        description="the record's first 16 KiB (all of it when not `truncated`); null if it "
        "had no value"
    )
    size: int = Field(ge=0, description="the record's size in bytes (0 if it had no value)")
    sha256: str = Field(
        pattern="^[0-9a-f]{64}$",
        description="the SHA-256 of all the record's bytes, in hex (of none: of the empty string)",
    )
    truncated: bool = Field(
        description="true when the record is over 16 KiB: `original_base64` and `original` "
        "hold only its first 16 KiB, and the record itself stays in its topic"
    )


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


def _event_schemas() -> dict[str, tuple[str, dict[str, Any]]]:
    """Each event type's JSON Schema and kind: `in` (read), `out` (written), `log` (kept)."""
    events = {
        type_: ("in", _schema(model, "validation", type_)) for type_, model in INPUT_TYPES.items()
    }
    for type_, model in _decisions().items():
        kind = "out" if type_ in OUTPUT_TOPIC_OF else "log"
        events[type_] = (kind, _schema(model, "serialization", type_))
    events["timer.elapsed"] = ("log", _schema(TimerElapsed, "serialization", "timer.elapsed"))
    events[DEAD_LETTER_TYPE] = ("out", _schema(DeadLettered, "serialization", DEAD_LETTER_TYPE))
    return events


def render() -> dict[str, str]:
    """Each file's content by its path under `schemas/`."""
    events = _event_schemas()
    schemas = {
        f"events/{kind}/{type_}.schema.json": schema for type_, (kind, schema) in events.items()
    }
    schemas["workflow.schema.json"] = Workflow.model_json_schema(mode="validation")
    files = {
        path: json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for path, schema in schemas.items()
    }
    on_topics = {type_: schema for type_, (kind, schema) in events.items() if kind != "log"}
    files["asyncapi.yaml"] = _ASYNCAPI_HEADER + yaml.dump(
        asyncapi(on_topics), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return dict(sorted(files.items()))


# --- AsyncAPI --------------------------------------------------------------------------------

_KAFKA_BINDING_VERSION = "0.5.0"
_COMPONENT_KEY = re.compile(r"^[\w.\-]+$")  # the AsyncAPI 3.0.0 components key pattern
_ASYNCAPI_HEADER = (
    "# Generated by `python -m handoff.schema_files` from handoff's models: do not edit.\n"
)
_DESCRIPTION = """\
The topics handoff reads and writes, and the events on them. This is the machine-readable form
of the topics and event types in handoff's wire contract (`shared/contract.md`), generated from
the same models as the JSON Schemas in `schemas/events/` (the payload schemas here are those
schemas, with each one's `$defs` hoisted into `components/schemas` as `<type>.<name>`).

Every record on every topic is one CloudEvents 1.0 event in structured JSON mode: the record
value is the whole event (attributes and `data`) as one UTF-8 JSON object, content type
`application/json`. The record key is the event's workspace id on every topic.

Topic names are the defaults; `HANDOFF_TOPIC_<NAME>` renames a topic and `HANDOFF_TOPIC_PREFIX`
prefixes them all. Internal events (`run.*`, `timer.elapsed`) stay in handoff's event log and are
on no topic, so they are not here.
"""


class _Dumper(yaml.SafeDumper):
    """`yaml.safe_dump`, with multi-line strings as literal blocks."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in path)}


def _hoist(type_: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` and its `$defs` as `components/schemas` entries: `<type>`, `<type>.<name>`."""
    body = copy.deepcopy(schema)
    defs: dict[str, Any] = body.pop("$defs", {})

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: rewrite(value) for key, value in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/$defs/")
            if name == ref or name not in defs:
                raise ValueError(f"{type_}: unexpected $ref {ref!r}")
            out["$ref"] = _ref("components", "schemas", f"{type_}.{name}")["$ref"]
        return out

    hoisted = {type_: rewrite(body)}
    for name, definition in defs.items():
        hoisted[f"{type_}.{name}"] = rewrite(definition)
    return hoisted


def _channels(types: list[str]) -> list[tuple[str, str, str, list[str]]]:
    """(role, address, action, message types) per topic, in the settings' order.

    The defaults, not the environment's: the document must not depend on where it is rendered.
    """
    settings = Settings.model_construct()
    inputs = set(settings.input_topics)
    outputs = {address: role for role, address in settings.output_topics.items()}
    role_of = {**OUTPUT_TOPIC_OF, DEAD_LETTER_TYPE: "deadletter"}
    channels = []
    for field in Settings.model_fields:
        if not field.startswith("topic_") or field == "topic_prefix":
            continue
        role = field.removeprefix("topic_")
        address = settings.topic(getattr(settings, field))
        if address in inputs:
            action = "receive"
            on_it = [
                t for t in types if t in INPUT_TYPES and input_topic_for(settings, t) == address
            ]
        elif outputs.get(address) == role:
            action = "send"
            on_it = [t for t in types if t in role_of and role_of[t] == role]
        else:
            raise ValueError(f"topic {address!r} ({field}) is neither an input nor an output")
        channels.append((role, address, action, on_it))
    placed = [t for *_, on_it in channels for t in on_it]
    if sorted(placed) != sorted(types):
        raise ValueError(f"event types on no topic or on several: {sorted(types)} != {placed}")
    return channels


def asyncapi(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the topics and the events (`schemas`, by type) on them."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for role, address, action, types in _channels(list(schemas)):
        env = f"`HANDOFF_TOPIC_{role.upper()}`"
        if action == "receive":
            what = f"An input topic: handoff reads it. {env} renames it."
        else:
            what = f"An output topic: handoff writes it. {env} renames it."
        if role == "deadletter":
            what += " Every input record that could not be accepted, with the reason."
        channels[role] = {
            "address": address,
            "title": address,
            "description": what,
            "messages": {type_: _ref("components", "messages", type_) for type_ in types},
        }
        verb = "reads" if action == "receive" else "writes"
        operation: dict[str, Any] = {
            "action": action,
            "channel": _ref("channels", role),
            "title": f"handoff {verb} {address}",
            "messages": [_ref("channels", role, "messages", type_) for type_ in types],
        }
        if action == "receive":
            operation["bindings"] = {
                "kafka": {
                    "groupId": {
                        "type": "string",
                        "default": Settings.model_fields["group_id"].default,
                        "description": "the consumer group; `HANDOFF_GROUP_ID` sets it",
                    },
                    "bindingVersion": _KAFKA_BINDING_VERSION,
                }
            }
        operations[f"{action}{role.capitalize()}"] = operation
        for type_ in types:
            messages[type_] = {
                "name": type_,
                "title": type_,
                "summary": f"handoff {verb} it on {address}",
                "contentType": "application/json",
                "payload": _ref("components", "schemas", type_),
                "bindings": _ref("components", "messageBindings", "workspaceKey"),
            }
            components.update(_hoist(type_, schemas[type_]))
    bad = [key for key in [*messages, *components] if not _COMPONENT_KEY.match(key)]
    if bad:
        raise ValueError(f"not valid AsyncAPI component keys: {bad}")
    document = {
        "asyncapi": "3.0.0",
        "info": {"title": "handoff", "version": __version__, "description": _DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": (
                    "An example: `HANDOFF_KAFKA_BOOTSTRAP` sets the bootstrap servers (unset,"
                    " handoff starts an embedded broker)."
                ),
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": components,
            "messages": messages,
            "messageBindings": {
                "workspaceKey": {
                    "kafka": {
                        "key": {
                            "type": "string",
                            "description": "the workspace id (the event's `workspaceid`)",
                        },
                        "bindingVersion": _KAFKA_BINDING_VERSION,
                    }
                }
            },
        },
    }
    # A JSON round trip: plain, unshared values, so the YAML has no anchors or aliases.
    result: dict[str, Any] = json.loads(json.dumps(document))
    return result


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
