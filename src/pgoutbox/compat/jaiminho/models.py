"""``jaiminho.models``: ``Event`` held pickled functions; pgoutbox's rows do not."""

from pgoutbox.compat.replaced import replaced_names

__getattr__ = replaced_names(
    __name__,
    {
        "Event": (
            "pgoutbox stores an import path and JSON arguments, never a pickled function; its "
            "rows are pgoutbox.models.OutboxEvent (kind='call'), listed by manage.py "
            "outbox_status and requeued by manage.py outbox_requeue"
        ),
    },
)
