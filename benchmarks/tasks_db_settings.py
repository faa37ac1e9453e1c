"""Django settings of django-tasks-db's side of ``python -m benchmarks tasks`` (its own scratch
virtualenv, without pgoutbox): its database backend on the benchmark's scratch database."""

from __future__ import annotations

import os

SECRET_KEY = "pgoutbox-benchmarks"
USE_TZ = True
INSTALLED_APPS = ["django_tasks_db"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "NAME": os.environ["PGOUTBOX_TEST_DB_NAME"],
        # Its best case: persistent connections (with Django's default 0, db_worker opens a
        # new connection for every task it claims).
        "CONN_MAX_AGE": None,
    }
}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_tasks_db": {"handlers": ["console"], "level": "INFO"}},
}
