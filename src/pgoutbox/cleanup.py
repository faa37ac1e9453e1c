"""Removing what is done: kept 'sent' events and consumer inbox rows past their retention."""

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


def delete_received_messages(older_than_days: int, *, using: str) -> int:
    """Delete inbox rows received more than ``older_than_days`` days ago; return how many.

    A message redelivered after its inbox row is gone is handled again: keep the window longer
    than any redelivery can take.
    """
    with connections[using].cursor() as cursor:
        cursor.execute(query("delete_received_before"), {"days": older_than_days})
        deleted: int = cursor.rowcount
    logger.info("deleted %d inbox rows", deleted, extra={"deleted": deleted})
    return deleted


def delete_task_results(older_than: datetime.timedelta, *, using: str) -> int:
    """Delete the results of Django tasks that finished (SUCCESSFUL or FAILED) longer than
    ``older_than`` ago; return how many. Results of unfinished tasks are never deleted."""
    with connections[using].cursor() as cursor:
        cursor.execute(query("delete_task_results_before"), {"seconds": older_than.total_seconds()})
        deleted: int = cursor.rowcount
    logger.info("deleted %d task results", deleted, extra={"deleted": deleted})
    return deleted
