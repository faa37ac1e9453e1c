"""django-outbox-pattern's module paths: ``pgoutbox.compat.outbox_pattern.decorators``,
``.payloads``, ``.factories`` (and ``.models``, which explains what replaced ``Published`` and
``Received``)."""

from pgoutbox.compat.outbox_pattern.translation import SETTING, SOURCE_NAME, SOURCES, translate

__all__ = ["SETTING", "SOURCES", "SOURCE_NAME", "translate"]
