"""Redis from Debian's package, run as the redis user with its data in .stack/redis."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from devstack.proc import ensure_debian_package, owned_dir, service_user
from devstack.service import LocalService


class Redis(LocalService):
    name = "redis"

    def spawn(self) -> int:
        redis = self.settings.redis
        return self.start_server(self.root / "redis", redis.host, redis.port, [])

    def start_server(self, folder: Path, host: str, port: int, extra: list[str]) -> int:
        """redis-server on host:port with its data and config in `folder`, plus `extra` lines."""
        binary = ensure_debian_package("redis-server", lambda: shutil.which("redis-server"))
        user = service_user("redis")
        data = owned_dir(folder, user)
        lines = [
            f"bind {host}",
            f"port {port}",
            f"dir {data}",
            "daemonize no",
            # Online features survive a restart; the offline store can rebuild them anyway.
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            *extra,
        ]
        password = self.settings.redis.password
        if password:
            lines.append(f"requirepass {password}")
        # A config file, not argv, so the password never shows in `ps`.
        config = data / "redis.conf"
        config.write_text("\n".join(lines) + "\n")
        config.chmod(0o600)
        ids: dict[str, int] = {}
        if user:
            os.chown(config, user.pw_uid, user.pw_gid)
            ids = {"user": user.pw_uid, "group": user.pw_gid}
        return self.popen([binary, str(config)], cwd=data, **ids)
