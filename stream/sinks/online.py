"""The online sink: each user's newest row per view into Feast's online store (Redis).

Where the online store is Redis, rows are written as Feast's Redis store writes them, older-row
guard included (stream/sinks/redis_rows.py); any other online store gets Feast's own
`online_write_batch`. Either way it is what `store.push(..., to=ONLINE)` ends in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from stream.catalog import VIEWS, view
from stream.core.records import Row
from stream.errors import UnsupportedStoreError
from stream.featurestore.feast_adapter import precompute_for_push
from stream.sinks.base import Flush, by_view, latest_per_user
from stream.sinks.feast_rows import PushViews, frame, join_key, online_rows
from stream.sinks.redis_rows import RedisOnlineSink, RedisWriter, rows_writer

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.feature_view import FeatureView

logger = logging.getLogger(__name__)


class OnlineSink:
    name = "online"

    def __init__(self, store: FeatureStore) -> None:
        self.views = PushViews(store)
        # Per view: the direct Redis write, or None for Feast's own.
        self._direct: dict[str, RedisWriter | None] = {}

    def setup(self) -> None:
        """Look up every view and its writer now, so the first flush is not the slow one."""
        for spec in VIEWS:
            for fv in self.views.of(spec.push_source):
                self.direct_writer(fv)

    def write(self, flush: Flush) -> None:
        if not flush.online:
            return
        for view_name, rows in by_view(latest_per_user(flush.rows)).items():
            self.write_view(view_name, rows)

    def write_view(self, view_name: str, rows: Sequence[Row]) -> None:
        """Rows of `view_name` to the online store of each view its push source feeds."""
        if not rows:
            return
        store = self.views.store
        for fv in self.views.of(view(view_name).push_source):
            direct = self.direct_writer(fv)
            if direct is not None:
                direct(rows)
            else:
                provider = self.views.provider
                provider.online_write_batch(
                    provider.repo_config, fv, online_rows(fv, rows), progress=None
                )
            if self.views.precomputes(fv):
                precompute_for_push(store, fv.name, frame(view_name, rows))

    def direct_writer(self, fv: FeatureView) -> RedisWriter | None:
        """The view's direct Redis write, or None where Feast's online store is another."""
        if fv.name not in self._direct:
            try:
                self._direct[fv.name] = rows_writer(self.views.provider, fv, join_key(fv))
            except UnsupportedStoreError as exc:
                logger.info("%s: Feast's online write (%s)", fv.name, exc)
                self._direct[fv.name] = None
        return self._direct[fv.name]

    def same_as(self, quick: RedisOnlineSink) -> bool:
        """Whether `quick` (made from the catalog, without Feast) writes what this sink
        writes: the same Redis layout, TTL and guard for every view, and no precompute."""
        for spec in VIEWS:
            for fv in self.views.of(spec.push_source):
                direct, mine = self.direct_writer(fv), quick.writers.get(fv.name)
                if direct is None or mine is None or self.views.precomputes(fv):
                    return False
                same_guard = (direct.ttl_s, direct.dedup) == (mine.ttl_s, mine.dedup)
                if not (same_guard and direct.layout.same_as(mine.layout)):
                    return False
        return True

    def close(self) -> None:
        """Feast's store keeps its Redis client; nothing of ours to release."""
