"""``django_outbox_pattern.models``: ``Published`` and ``Received`` have pgoutbox counterparts
with other names and shapes."""

from pgoutbox.compat.replaced import replaced_names

__getattr__ = replaced_names(
    __name__,
    {
        "Published": (
            "write an event with pgoutbox.send(destination, body, headers=...) inside your "
            "transaction.atomic() (or decorate the model with @publish); the rows are "
            "pgoutbox.models.OutboxEvent"
        ),
        "Received": (
            "Payload.save() records the message in pgoutbox's inbox, "
            "pgoutbox.models.ReceivedMessage"
        ),
    },
)
