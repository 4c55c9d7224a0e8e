"""Redis from Debian's package, run as the redis user with its data in .stack/redis."""

from __future__ import annotations

import os
import shutil

from devstack.proc import ensure_debian_package, owned_dir, service_user
from devstack.service import LocalService


class Redis(LocalService):
    name = "redis"

    def spawn(self) -> int:
        binary = ensure_debian_package("redis-server", lambda: shutil.which("redis-server"))
        user = service_user("redis")
        data = owned_dir(self.root / "redis", user)
        redis = self.settings.redis
        lines = [
            f"bind {redis.host}",
            f"port {redis.port}",
            f"dir {data}",
            "daemonize no",
            # Online features survive a restart; the offline store can rebuild them anyway.
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
        ]
        if redis.password:
            lines.append(f"requirepass {redis.password}")
        # A config file, not argv, so the password never shows in `ps`.
        config = data / "redis.conf"
        config.write_text("\n".join(lines) + "\n")
        config.chmod(0o600)
        ids: dict[str, int] = {}
        if user:
            os.chown(config, user.pw_uid, user.pw_gid)
            ids = {"user": user.pw_uid, "group": user.pw_gid}
        return self.popen([binary, str(config)], cwd=data, **ids)
