"""``django_outbox_pattern.payloads``: what a ``subscribe`` callback receives."""

from pgoutbox.consumer.payload import Payload

__all__ = ["Payload"]
