"""Validation errors as a person reads them: one line each, at its path in the document.

`steps[2].branches[0].when.all[1].op: unknown operator 'equals'`, rather than pydantic's
tuple locations with union tags in them (our tags are `<kind>`, and are left out). A value of
the wrong type says what it was: `max_open_contacts: Input should be a valid integer, not a
boolean (true)`.
"""

from pydantic import ValidationError

from handoff.core.workflow import document_problems

__all__ = ["describe", "describe_workflow", "json_kind"]

_TYPE_ERRORS = frozenset(
    {"bool_type", "dict_type", "float_type", "int_type", "list_type", "model_type", "string_type"}
)
"""pydantic's errors for a value of the wrong JSON type (the reason says which it was)."""


def describe(err: ValidationError) -> list[str]:
    lines: list[str] = []
    for e in err.errors(include_url=False):
        path = _path(e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "literal_error":
            name = "operator" if e["loc"] and e["loc"][-1] == "op" else "value"
            message = f"unknown {name} {e['input']!r}; {message[0].lower()}{message[1:]}"
        if e["type"] == "json_invalid" and "recursion limit exceeded" in message:
            # JSON that nests deeper than pydantic's parser goes (about 200 levels)
            where = message.rsplit("recursion limit exceeded", 1)[1].strip()
            message = f"nested too deep: over 200 levels of objects and arrays ({where})"
        if e["type"] in _TYPE_ERRORS and "input" in e:
            message = f"{message}, not {json_kind(e['input'])}"
        if e["type"] == "value_error" and message.startswith("steps"):
            # whole-document problems carry their own paths, relative to where they stand
            lines += [f"{path}.{line}" if path else line for line in message.splitlines()]
        else:
            lines.append(f"{path or '(document)'}: {message}")
    return lines


def json_kind(value: object) -> str:
    """What a wrong value is, as JSON names it: no coercion makes `"5"` an integer or `true`
    a number, so the reason says which it was."""
    match value:
        case bool():
            return f"a boolean ({'true' if value else 'false'})"
        case int() | float():
            return f"a number ({str(value)[:32]})"
        case str():
            return f"a string ({value[:32]!r})"
        case None:
            return "null"
        case list():
            return "an array"
        case dict():
            return "an object"
    return type(value).__name__


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith("<"):
            path += f".{part}" if path else part
    return path


def describe_workflow(err: ValidationError, document: object, at: str = "") -> list[str]:
    """`describe`, plus the whole-document problems pydantic did not get to because the
    shapes were wrong (it checks the whole only once every part is valid). `at` is where
    the document stands in the record (`data.definition`)."""

    lines = describe(err)
    prefix = f"{at}." if at else ""
    return lines + [
        f"{prefix}{p}" for p in document_problems(document) if f"{prefix}{p}" not in lines
    ]
