"""Each fold is offered only the event types in its HANDLES, so HANDLES must name exactly the
event classes its `match` has cases for: read from the fold's own source."""

import ast
import inspect
import typing

import pytest

from handoff_projections import PROJECTIONS


def _matched_types(module: object) -> set[str]:
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    names = {
        node.cls.id
        for node in ast.walk(tree)
        if isinstance(node, ast.MatchClass) and isinstance(node.cls, ast.Name)
    }
    return {typing.get_args(getattr(module, n).model_fields["type"].annotation)[0] for n in names}


@pytest.mark.parametrize("projection", PROJECTIONS, ids=lambda p: p.__name__.rsplit(".", 1)[-1])
def test_handles_names_exactly_the_types_the_fold_matches(projection: object) -> None:
    assert _matched_types(projection) == projection.HANDLES  # type: ignore[attr-defined]
