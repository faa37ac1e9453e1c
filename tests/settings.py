"""Django settings for pgoutbox's own tests; services come from environment variables."""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = "pgoutbox-tests"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "pgoutbox",
    "tests.app",
]
DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        # A subprocess listener (acceptance tests) is pointed at the test database this way.
        "NAME": os.environ.get("PGOUTBOX_TEST_DB_NAME", os.environ.get("PGDATABASE", "postgres")),
        # One test database per pytest process: concurrent runs on one server never collide.
        "TEST": {"NAME": os.environ.get("PGOUTBOX_TEST_DB_NAME") or f"test_pgoutbox_{os.getpid()}"},
    }
}
# Two more aliases of the test database, for code that must follow the caller's alias rather
# than the default one; "proxied" is pointed at a cuttable TCP proxy by the tests using it.
DATABASES["other"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
DATABASES["proxied"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
# The same database under other aliases, as deployments have them: "direct" (what a relay in
# front of PgBouncer connects through) and "bouncer" (PgBouncer in transaction mode, started by
# tests/support/pgbouncer.py on this port when a test needs it).
PGBOUNCER_PORT = int(os.environ.get("PGOUTBOX_PGBOUNCER_PORT", str(20000 + os.getpid() % 20000)))
DATABASES["direct"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
DATABASES["bouncer"] = {
    **DATABASES["default"],
    "PORT": str(PGBOUNCER_PORT),
    # Transaction pooling: no prepared statements or server-side cursors across transactions.
    "OPTIONS": {"prepare_threshold": None},
    "DISABLE_SERVER_SIDE_CURSORS": True,
    "TEST": {"MIRROR": "default"},
}
STOMP_HOST = os.environ.get("STOMP_HOST", "127.0.0.1")
STOMP_PORT = int(os.environ.get("STOMP_PORT", "61613"))
PGOUTBOX = {
    "STOMP_HOSTS": [(STOMP_HOST, STOMP_PORT)],
    "STOMP_USERNAME": os.environ.get("STOMP_USER", "guest"),
    "STOMP_PASSCODE": os.environ.get("STOMP_PASSCODE", "guest"),
    "STOMP_VHOST": os.environ.get("STOMP_VHOST", "/"),
    "POLL_INTERVAL": 1.0,
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "pgoutbox": {"handlers": ["console"], "level": os.environ.get("PGOUTBOX_LOG", "INFO")}
    },
}

# The admin (tests/integration/test_admin.py, tests/acceptance/test_admin_browser.py).
INSTALLED_APPS += [
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"

# Django Tasks (Django >= 6.0; Django 5.2 ignores the setting): pgoutbox's backend on the
# default alias, and a second one writing on the "other" alias.
TASKS = {
    "default": {
        "BACKEND": "pgoutbox.tasks.OutboxTaskBackend",
        "QUEUES": ["default", "low", "ordered"],
        "OPTIONS": {"KEEP_ORDER_QUEUES": ["ordered"]},
    },
    "other": {
        "BACKEND": "pgoutbox.tasks.OutboxTaskBackend",
        "QUEUES": [],
        "OPTIONS": {"DATABASE": "other"},
    },
}
