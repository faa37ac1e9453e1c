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
        if uses_outbox_tasks():
            # Django tasks run by a relay are those its process defined (pgoutbox/tasks.py).
            from django.utils.module_loading import autodiscover_modules

            autodiscover_modules("tasks")
        registry.load_function_modules(conf.get_settings().function_modules)


def uses_outbox_tasks() -> bool:
    """Whether ``settings.TASKS`` (Django >= 6.0) names pgoutbox's task backend."""
    import django
    from django.conf import settings

    if django.VERSION < (6, 0):
        return False
    backends = getattr(settings, "TASKS", {}) or {}
    return any(
        isinstance(params, dict) and params.get("BACKEND") == "pgoutbox.tasks.OutboxTaskBackend"
        for params in backends.values()
    )
