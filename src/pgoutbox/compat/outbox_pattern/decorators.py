"""``django_outbox_pattern.decorators``: ``Config`` and ``publish``."""

from pgoutbox.producer.models import Config, publish

__all__ = ["Config", "publish"]
