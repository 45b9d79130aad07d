"""Conversation ids are stable, reversible and collision-free."""

import pytest

from honeychat.core.types import ConversationKey


def test_id_round_trip_with_awkward_ids() -> None:
    for user in ["123", "T1:U2", "a b/c", "émoji🙂", "%41"]:
        key = ConversationKey("slack", user, "luna")
        assert ConversationKey.parse(key.id) == key


def test_colons_do_not_collide() -> None:
    a = ConversationKey("telegram", "1:2", "luna")
    b = ConversationKey("telegram:1", "2", "luna")
    assert a.id != b.id
    assert a.digest != b.digest


def test_parse_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        ConversationKey.parse("only:two")
