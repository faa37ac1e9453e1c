from __future__ import annotations

from django.apps import AppConfig


class PgOutboxConfig(AppConfig):
    name = "pgoutbox"
    label = "pgoutbox"
    verbose_name = "Outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from pgoutbox import conf  # noqa: F401  (connects the setting_changed receiver)
