"""Derived ids are the version-5 UUIDs `uuid.uuid5` makes: ids already logged and sent keep
meaning the same thing."""

from uuid import UUID, uuid5

from hypothesis import given
from hypothesis import strategies as st

from handoff.core.ids import _NAMESPACE, derive_id


@given(st.lists(st.one_of(st.text(), st.integers()), max_size=5))
def test_a_derived_id_is_the_uuid5_of_its_parts(parts: list[str | int]) -> None:
    derived = derive_id(*parts)
    assert derived == str(uuid5(_NAMESPACE, "\x1f".join(map(str, parts))))
    assert UUID(derived).version == 5
