"""``jaiminho.send``: ``from pgoutbox.compat.jaiminho.send import save_to_outbox``."""

from pgoutbox.producer.functions import save_to_outbox, save_to_outbox_stream

__all__ = ["save_to_outbox", "save_to_outbox_stream"]
