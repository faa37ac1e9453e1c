"""Django settings of django-tasks-db's side of ``python -m benchmarks tasks`` (its own scratch
virtualenv, without pgoutbox): its database backend on the benchmark's scratch database."""

from __future__ import annotations

from tests.settings import DATABASES as TEST_DATABASES

SECRET_KEY = "pgoutbox-benchmarks"
USE_TZ = True
INSTALLED_APPS = ["django_tasks_db"]
# Its best case: persistent connections (with Django's default 0, db_worker opens a new
# connection for every task it claims).
DATABASES = {"default": {**TEST_DATABASES["default"], "CONN_MAX_AGE": None}}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_tasks_db": {"handlers": ["console"], "level": "INFO"}},
}
