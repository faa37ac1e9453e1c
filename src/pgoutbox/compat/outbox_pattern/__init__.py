"""django-outbox-pattern's module paths: ``pgoutbox.compat.outbox_pattern.decorators``,
``.payloads``, ``.factories``, ``.models`` (``Published`` for writing; ``Received`` explains what
replaced it) and ``.management.commands`` (``publish``, ``subscribe``)."""

from pgoutbox.compat.outbox_pattern.translation import SETTING, SOURCE_NAME, SOURCES, translate

__all__ = ["SETTING", "SOURCES", "SOURCE_NAME", "translate"]
