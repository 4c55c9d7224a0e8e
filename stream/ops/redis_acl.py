"""Least-privilege Redis users for the online store: the ingestor writes, the feature server reads.

Invariant: each role's rules name only the Feast project's keys (Feast ends every key with the
project name: `_redis_key` is the serialized entity key, then the project) and only the commands
that role's client sends:

| role       | client                                    | commands            | keys       |
|------------|-------------------------------------------|---------------------|------------|
| `ingestor` | the worker's writer, replay, Feast's push | HMGET, HSET, EXPIRE | read/write |
| `reader`   | the feature server, get_online_features   | HMGET               | read only  |

The ingestor reads too, and cannot be kept from it: each write first reads the key's stored
event time (HMGET), so that an older row never replaces a newer one; Redis's ACLs stop at the
key, not the field. Everything else (FLUSHDB, DEL, KEYS, SCAN, CONFIG, other projects' keys,
Pub/Sub) is refused to both. Tested on a single Redis; a cluster takes the same rules per node.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from stream.errors import ConfigError

Role = Literal["ingestor", "reader"]
ROLES: Final[tuple[Role, ...]] = ("ingestor", "reader")

# SELECT is sent on connecting to a URL naming a database, PING by the health checks. Not CLIENT
# SETINFO, which redis-py sends too and carries on without when refused (Redis before 7.2 has
# no such command, and an ACL naming one is refused whole).
_CONNECT: Final = ("+ping", "+select")
_COMMANDS: Final[dict[Role, tuple[str, ...]]] = {
    "ingestor": ("+hmget", "+hset", "+expire"),
    "reader": ("+hmget",),
}
# %RW: read and write; %R: read only, even through a command that could write.
_KEY_ACCESS: Final[dict[Role, str]] = {"ingestor": "~", "reader": "%R~"}


def key_pattern(project: str) -> str:
    """The glob of the project's keys: anything ending with its name, glob characters escaped."""
    if not project:
        raise ConfigError("a Redis ACL needs the Feast project's name")
    return "*" + re.sub(r"([*?\[\]\\])", r"\\\1", project)


def acl_rules(role: Role, project: str) -> list[str]:
    """The ACL SETUSER rules of `role`, from a clean slate, without the password."""
    return [
        "reset",
        "on",
        "resetchannels",
        f"{_KEY_ACCESS[role]}{key_pattern(project)}",
        "-@all",
        *_CONNECT,
        *_COMMANDS[role],
    ]


def setuser_command(user: str, role: Role, project: str, password: str) -> list[str]:
    """ACL SETUSER's arguments for `user` in `role`, with its password (`>password`)."""
    if not password:
        raise ConfigError(f"the Redis user {user!r} needs a password")
    return ["ACL", "SETUSER", user, *acl_rules(role, project), f">{password}"]
