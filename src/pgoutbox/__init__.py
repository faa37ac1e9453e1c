"""pgoutbox: a transactional outbox for Django on PostgreSQL, pushed by LISTEN/NOTIFY."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgoutbox.producer.send import send

__all__ = ["send"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that ``import pgoutbox`` works before Django's settings are configured.
    if name == "send":
        from pgoutbox.producer.send import send

        return send
    raise AttributeError(f"module 'pgoutbox' has no attribute {name!r}")
