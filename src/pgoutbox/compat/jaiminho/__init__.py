"""django-jaiminho's module paths: ``pgoutbox.compat.jaiminho.send``, ``.constants``,
``.signals``, ``.management.commands`` (``events_relay``, ``event_cleaner``) and ``.models``
(which explains what replaced ``Event``)."""

from pgoutbox.compat.jaiminho.translation import SETTING, SOURCES, translate

__all__ = ["SETTING", "SOURCES", "translate"]
