from __future__ import annotations

from django.apps import AppConfig


class PgOutboxConfig(AppConfig):
    name = "pgoutbox"
    label = "pgoutbox"
    verbose_name = "Outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from pgoutbox import (
            checks,  # noqa: F401 (registers the system checks)
            conf,  # connects the setting_changed receiver
            registry,
        )

        # The functions a listener may run are those registered by importing these modules
        # (registry.py): each app's outbox module, then PGOUTBOX['FUNCTION_MODULES'].
        registry.autodiscover()
        registry.load_function_modules(conf.get_settings().function_modules)
