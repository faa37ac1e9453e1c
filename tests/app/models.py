from __future__ import annotations

from django.db import models


class Order(models.Model):
    """A business row written in the same transaction as its event."""

    reference = models.CharField(max_length=50)

    class Meta:
        app_label = "app"
