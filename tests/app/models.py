from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models

from pgoutbox.producer.models import Config, publish


class Order(models.Model):
    """A business row written in the same transaction as its event."""

    reference = models.CharField(max_length=50)

    class Meta:
        app_label = "app"


@publish(
    [
        Config(destination="/topic/pgoutbox-test-invoice", version="v1"),
        Config(destination="/topic/pgoutbox-test-invoice-summary", serializer="summary"),
        Config(destination="/topic/pgoutbox-test-invoice-ref", fields=["reference"]),
    ]
)
class Invoice(models.Model):
    """A model publishing django-outbox-pattern style events, with its own ``save()``."""

    reference = models.CharField(max_length=50)
    amount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    issued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "app"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.reference = self.reference.upper()  # the override must still run
        super().save(*args, **kwargs)

    def summary(self) -> dict[str, Any]:
        return {"id": self.pk, "ref": self.reference, "amount": self.amount}


class CreditNote(Invoice):
    """A subclass of a decorated model: its saves must neither recurse nor lose events."""

    reason = models.CharField(max_length=100, default="")

    class Meta:
        app_label = "app"
