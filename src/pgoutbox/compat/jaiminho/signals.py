"""``jaiminho.signals``: the same six signals (``sender``, ``event_payload``) and
``get_event_payload``."""

from pgoutbox.signals import (
    event_failed_to_publish,
    event_failed_to_publish_by_events_relay,
    event_permanently_failed,
    event_permanently_failed_by_events_relay,
    event_published,
    event_published_by_events_relay,
    get_event_payload,
)

__all__ = [
    "event_failed_to_publish",
    "event_failed_to_publish_by_events_relay",
    "event_permanently_failed",
    "event_permanently_failed_by_events_relay",
    "event_published",
    "event_published_by_events_relay",
    "get_event_payload",
]
