"""`schemas/asyncapi.yaml` is what the code renders, is a well-formed AsyncAPI 3 document, and
lays out exactly the contract's topics and event types, with the schemas of `schemas/events/`."""

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from handoff.adapters.kafka_send import input_topic_for
from handoff.app.settings import Settings
from handoff.core.events import OUTPUT_TOPIC_OF
from handoff.core.inputs import INPUT_TYPES
from handoff.schema_files import DEAD_LETTER_TYPE, render

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
DOCUMENT = SCHEMAS / "asyncapi.yaml"
DEFAULTS = Settings.model_construct()
OUTPUT_TYPES = {*OUTPUT_TOPIC_OF, DEAD_LETTER_TYPE}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return loaded


def refs(node: Any) -> list[str]:
    """Every `$ref` in `node`, depth first."""
    if isinstance(node, list):
        return [ref for item in node for ref in refs(item)]
    if not isinstance(node, dict):
        return []
    found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    return found + [ref for value in node.values() for ref in refs(value)]


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: not a local reference"
    node: Any = doc
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref}: {key!r} is under a non-object"
        assert key in node, f"{ref}: no {key!r}"
        node = node[key]
    return node


def unhoist(type_: str, node: Any) -> Any:
    """`node` with its `#/components/schemas/<type_>.<name>` refs back as `#/$defs/<name>`."""
    if isinstance(node, list):
        return [unhoist(type_, item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: unhoist(type_, value) for key, value in node.items()}
    if isinstance(out.get("$ref"), str):
        prefix = f"#/components/schemas/{type_}."
        assert out["$ref"].startswith(prefix), f"{type_} refers outside itself: {out['$ref']}"
        out["$ref"] = "#/$defs/" + out["$ref"].removeprefix(prefix)
    return out


def test_asyncapi_file_is_up_to_date() -> None:
    assert DOCUMENT.is_file(), "run `python -m handoff.schema_files` and commit the result"
    assert DOCUMENT.read_text() == render()["asyncapi.yaml"], (
        "schemas/asyncapi.yaml is stale: run `python -m handoff.schema_files` and commit it"
    )


def test_every_ref_resolves_within_the_document(doc: dict[str, Any]) -> None:
    found = refs(doc)
    assert found
    for ref in found:
        resolve(doc, ref)


def test_the_channels_are_the_default_topics(doc: dict[str, Any]) -> None:
    addresses = {channel["address"] for channel in doc["channels"].values()}
    assert addresses == {*DEFAULTS.input_topics, *DEFAULTS.output_topics.values()}
    assert addresses == {
        "inbox.conversations",
        "inbox.presence",
        "routing.workflows",
        "routing.assignments",
        "routing.comments",
        "routing.messages",
        "routing.deadletter",
    }


def test_each_channel_carries_the_types_the_service_puts_on_its_topic(
    doc: dict[str, Any],
) -> None:
    for channel in doc["channels"].values():
        for type_, message in channel["messages"].items():
            assert message == {"$ref": f"#/components/messages/{type_}"}
            assert type_ in doc["components"]["messages"]
            if type_ in INPUT_TYPES:
                expected = input_topic_for(DEFAULTS, type_)
            elif type_ == DEAD_LETTER_TYPE:
                expected = DEFAULTS.output_topics["deadletter"]
            else:
                expected = DEFAULTS.output_topics[OUTPUT_TOPIC_OF[type_]]
            assert channel["address"] == expected, type_


def test_operations_are_from_handoffs_point_of_view(doc: dict[str, Any]) -> None:
    seen = set()
    for name, operation in doc["operations"].items():
        channel = resolve(doc, operation["channel"]["$ref"])
        assert operation["channel"]["$ref"].startswith("#/channels/"), name
        seen.add(channel["address"])
        reads = channel["address"] in DEFAULTS.input_topics
        assert operation["action"] == ("receive" if reads else "send"), name
        own = {f"{operation['channel']['$ref']}/messages/{type_}" for type_ in channel["messages"]}
        assert {message["$ref"] for message in operation["messages"]} == own, name
    assert seen == {channel["address"] for channel in doc["channels"].values()}


def test_the_messages_are_the_types_on_topics(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    assert set(messages) == {*INPUT_TYPES, *OUTPUT_TYPES}
    on_channels = [t for channel in doc["channels"].values() for t in channel["messages"]]
    assert sorted(on_channels) == sorted(messages), "each type on exactly one channel"
    for type_, message in messages.items():
        assert message["name"] == type_
        assert message["contentType"] == "application/json"
        assert message["payload"] == {"$ref": f"#/components/schemas/{type_}"}
        key = resolve(doc, message["bindings"]["$ref"])["kafka"]["key"]
        assert key["type"] == "string"


def test_the_payload_schemas_are_the_schema_files(doc: dict[str, Any]) -> None:
    """Putting each type's hoisted `$defs` back gives its file in `schemas/events/` exactly."""
    components = doc["components"]["schemas"]
    for type_ in doc["components"]["messages"]:
        schema = unhoist(type_, components[type_])
        defs = {
            key.removeprefix(f"{type_}."): unhoist(type_, value)
            for key, value in components.items()
            if key.startswith(f"{type_}.") and "." not in key.removeprefix(f"{type_}.")
        }
        if defs:
            schema["$defs"] = defs
        kind = "in" if type_ in INPUT_TYPES else "out"
        assert schema == json.loads((SCHEMAS / f"events/{kind}/{type_}.schema.json").read_text())
    hoisted = {key for key in components if key not in doc["components"]["messages"]}
    owners = {key.rsplit(".", 1)[0] for key in hoisted}
    assert owners <= set(doc["components"]["messages"]), "no stray schemas"


def test_internal_events_are_on_no_topic(doc: dict[str, Any]) -> None:
    assert not [t for t in doc["components"]["messages"] if t.startswith(("run.", "timer."))]


def test_the_document_validates_against_the_asyncapi3_object_model(doc: dict[str, Any]) -> None:
    """The `asyncapi3` package's pydantic model of AsyncAPI 3.0.

    It allows only `[A-Za-z0-9_-]` in component, channel-message and channel keys; the spec
    (and its official JSON Schema) allows `^[\\w\\d.\\-_]+$` for component keys and any channel
    id. Our keys are event types, with dots: they are renamed (`.` to `_`) for this check only,
    with their `$ref`s, and nothing else in the document is touched.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # it shadows BaseModel.schema on import
        from asyncapi3.models.asyncapi import AsyncAPI3

    def undot(mapping: dict[str, Any]) -> dict[str, Any]:
        renamed = {key.replace(".", "_"): value for key, value in mapping.items()}
        assert len(renamed) == len(mapping), "renaming must not merge keys"
        return renamed

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: rewrite(value) for key, value in node.items()}
        if isinstance(out.get("$ref"), str):
            out["$ref"] = out["$ref"].replace(".", "_")
        return out

    copy = rewrite(doc)
    for channel in copy["channels"].values():
        channel["messages"] = undot(channel["messages"])
    copy["components"]["messages"] = undot(copy["components"]["messages"])
    copy["components"]["schemas"] = undot(copy["components"]["schemas"])
    parsed = AsyncAPI3.model_validate(copy)
    assert parsed.asyncapi == "3.0.0"
    assert parsed.channels is not None
    assert len(parsed.channels) == len(doc["channels"])
