"""pgoutbox: a transactional outbox for Django on PostgreSQL, pushed by LISTEN/NOTIFY."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgoutbox.producer.functions import save_to_outbox, save_to_outbox_stream
    from pgoutbox.producer.models import Config, publish
    from pgoutbox.producer.send import send

__all__ = ["Config", "publish", "save_to_outbox", "save_to_outbox_stream", "send"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that ``import pgoutbox`` works before Django's settings are configured.
    if name == "send":
        from pgoutbox.producer.send import send

        return send
    if name in ("save_to_outbox", "save_to_outbox_stream"):
        from pgoutbox.producer import functions

        return getattr(functions, name)
    if name in ("Config", "publish"):
        from pgoutbox.producer import models

        return getattr(models, name)
    raise AttributeError(f"module 'pgoutbox' has no attribute {name!r}")
