"""The Redis ACL rules of each role, as text: confined to the project's keys, from a clean slate."""

from __future__ import annotations

import pytest

from stream.errors import ConfigError
from stream.ops.redis_acl import acl_rules, key_pattern, setuser_command


@pytest.mark.parametrize(
    ("project", "pattern"),
    [
        ("aurora_features", "*aurora_features"),
        # Glob characters in a project name match only themselves.
        ("a*b?[c]", r"*a\*b\?\[c\]"),
        ("back\\slash", "*back\\\\slash"),
    ],
)
def test_the_key_pattern_is_the_project_suffix(project: str, pattern: str) -> None:
    assert key_pattern(project) == pattern


def test_the_reader_may_only_read_and_the_ingestor_may_not_delete() -> None:
    reader = acl_rules("reader", "p")
    ingestor = acl_rules("ingestor", "p")
    for rules in (reader, ingestor):
        # A rule set replaces whatever the user had, and allows nothing it does not name.
        assert rules[:3] == ["reset", "on", "resetchannels"]
        assert "-@all" in rules
        assert not {"+@all", "allkeys", "~*", "+del", "+flushdb", "+scan", "+keys"} & set(rules)
    assert "%R~*p" in reader and "+hset" not in reader
    assert "~*p" in ingestor and {"+hset", "+hmget", "+expire"} <= set(ingestor)


def test_a_user_needs_a_password_and_a_project() -> None:
    assert setuser_command("u", "reader", "p", "pw")[-1] == ">pw"
    with pytest.raises(ConfigError):
        setuser_command("u", "reader", "p", "")
    with pytest.raises(ConfigError):
        acl_rules("reader", "")
