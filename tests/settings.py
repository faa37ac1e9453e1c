"""Django settings for pgoutbox's own tests; services come from environment variables."""

from __future__ import annotations

import os

SECRET_KEY = "pgoutbox-tests"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "pgoutbox",
    "tests.app",
]
DATABASES = {
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
