"""Django settings of the peers' processes: django-jaiminho and django-outbox-pattern configured
as their READMEs say, on a scratch database of their own (``PEER_DB_NAME``).
``PEER_JAIMINHO_STRATEGY`` is jaiminho's ``PUBLISH_STRATEGY``."""

from __future__ import annotations

import os

from tests.settings import DATABASES as _PG  # the same server, the same credentials

SECRET_KEY = "pgoutbox-bench-peers"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "jaiminho",
    "django_outbox_pattern",
]
DATABASES = {"default": {**_PG["default"], "NAME": os.environ.get("PEER_DB_NAME", "postgres")}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STOMP = (os.environ.get("STOMP_HOST", "127.0.0.1"), int(os.environ.get("STOMP_PORT", "61613")))
JAIMINHO_CONFIG = {
    "PUBLISH_STRATEGY": os.environ.get("PEER_JAIMINHO_STRATEGY", "publish-on-commit"),
    "DEFAULT_CAPTURE_EXCEPTION": None,
}
DJANGO_OUTBOX_PATTERN = {
    "DEFAULT_STOMP_HOST_AND_PORTS": [STOMP],
    "DEFAULT_STOMP_USERNAME": "guest",
    "DEFAULT_STOMP_PASSCODE": "guest",
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
