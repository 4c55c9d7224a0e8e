"""Create the event topics and the dead-letter topic, leaving existing ones alone."""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError, for_code

from stream.catalog import EVENT_TYPES
from stream.errors import TopicCreationError
from stream.settings import Settings

logger = logging.getLogger(__name__)


def topic_names(settings: Settings) -> list[str]:
    """Every topic the pipeline uses: one per event type, then the dead-letter topic."""
    return [settings.topic_for(event_type) for event_type in EVENT_TYPES] + [settings.dlq_topic]


def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics and return the names created by this call."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="aurora-topics",
        **settings.kafka_client_config(),
    )
    try:
        existing = set(admin.list_topics())
        missing = [name for name in topic_names(settings) if name not in existing]
        if not missing:
            return []
        spec = {
            "num_partitions": settings.topic_partitions,
            "replication_factor": settings.topic_replication_factor,
        }
        response = admin.create_topics(
            {name: dict(spec) for name in missing}, raise_errors=False, wait_for_metadata=False
        )
        created = _created(response)
        if created:
            # A producer that starts right after may otherwise see no leader yet.
            admin.wait_for_topics(created)
    finally:
        admin.close()
    for name in created:
        logger.info("created topic %s (%d partitions)", name, settings.topic_partitions)
    return created


def _created(response: dict[str, object]) -> list[str]:
    created = []
    topics = response.get("topics", [])
    assert isinstance(topics, list)
    for topic in topics:
        error = for_code(topic["error_code"])
        if topic["error_code"] == 0:
            created.append(topic["name"])
        elif error is TopicAlreadyExistsError:
            # Another process created it between our listing and our request: that is fine.
            continue
        else:
            raise TopicCreationError(topic["name"], topic.get("error_message") or error.__name__)
    return created
