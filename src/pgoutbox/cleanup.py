"""Removing what is done: kept 'sent' events past their retention."""

from __future__ import annotations

import datetime
import logging

from django.db import connections

from pgoutbox.sql import query

logger = logging.getLogger(__name__)


def delete_sent_events(older_than: datetime.timedelta, *, using: str) -> int:
    """Delete events kept as 'sent' (``DELETE_AFTER_SEND = False``) whose ``sent_at`` is older
    than ``older_than``; return how many. Pending and dead events are never deleted."""
    with connections[using].cursor() as cursor:
        cursor.execute(query("delete_sent_before"), {"seconds": older_than.total_seconds()})
        deleted: int = cursor.rowcount
    logger.info("deleted %d sent events", deleted, extra={"deleted": deleted})
    return deleted
