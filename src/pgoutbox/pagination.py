"""A paginator for big, delete-heavy tables: counts exactly only what is cheap to count.

Up to :data:`EXACT_UP_TO` rows are counted exactly (a ``LIMIT``-ed count, so a small result,
such as the dead events, pages exactly). Beyond that, the count is the planner's estimate:
``pg_class.reltuples`` for the whole table, the plan's row estimate for a filtered list.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from django.core.paginator import Paginator
from django.db import connections

from pgoutbox.sql import query

EXACT_UP_TO = 10_000


class EstimatedCountPaginator(Paginator):  # type: ignore[type-arg]
    """A paginator whose ``count`` never runs a full ``COUNT(*)``."""

    @functools.cached_property
    def count(self) -> int:
        queryset: Any = self.object_list
        exact = int(queryset.order_by()[: EXACT_UP_TO + 1].count())
        if exact <= EXACT_UP_TO:
            return exact
        return max(self._estimate(queryset), EXACT_UP_TO + 1)

    @staticmethod
    def _estimate(queryset: Any) -> int:
        if not queryset.query.where:
            table = queryset.model._meta.db_table
            with connections[queryset.db].cursor() as cursor:
                cursor.execute(query("estimated_rows"), {"table": table})
                row = cursor.fetchone()
            if row is not None and row[0] >= 0:
                return int(row[0])
        plan = json.loads(queryset.order_by().explain(format="json"))
        return int(plan[0]["Plan"]["Plan Rows"])
