"""``settings.DJANGO_OUTBOX_PATTERN`` (django-outbox-pattern) translated into ``PGOUTBOX`` keys.

Every key of that library is accepted or refused explicitly; an unknown key is an error, as in
``PGOUTBOX``. A pure function of the dict: ``pgoutbox.conf`` validates the values it returns by
pgoutbox's own rules, and an error names both keys (``SOURCES`` says where each came from).

================================================  ==========================================
DJANGO_OUTBOX_PATTERN key                         in pgoutbox
================================================  ==========================================
DEFAULT_STOMP_HOST_AND_PORTS                      STOMP_HOSTS
DEFAULT_STOMP_USERNAME / DEFAULT_STOMP_PASSCODE   STOMP_USERNAME / STOMP_PASSCODE
DEFAULT_STOMP_VHOST                               STOMP_VHOST
DEFAULT_STOMP_HEARTBEATS                          STOMP_HEARTBEATS
DEFAULT_STOMP_USE_SSL                             STOMP_USE_SSL
DEFAULT_STOMP_KEY_FILE / _CERT_FILE / _CA_CERTS   STOMP_SSL_KEY_FILE / _CERT_FILE / _CA_CERTS
DEFAULT_STOMP_SSL_PASSWORD                        STOMP_SSL_PASSWORD
DEFAULT_PRODUCER_WAITING_TIME                     POLL_INTERVAL (a float; 0 is refused)
DEFAULT_MAXIMUM_RETRY_ATTEMPTS                    MAX_ATTEMPTS
DEFAULT_MAXIMUM_BACKOFF                           RECONNECT_BACKOFF_MAX
DEFAULT_STOMP_QUEUE_HEADERS                       CONSUMER_QUEUE_HEADERS, its prefetch-count
                                                  CONSUMER_PREFETCH
DEFAULT_EXCLUSIVE_QUEUE                           CONSUMER_QUEUE_HEADERS["exclusive"]
DEFAULT_CONNECTION_CLASS, DEFAULT_CONSUMER_       ignored at their defaults; any other value
LISTENER_CLASS, DEFAULT_GENERATE_HEADERS,         is refused (ImproperlyConfigured): pgoutbox
DEFAULT_PUBLISHED_CLASS, DEFAULT_RECEIVED_CLASS   cannot honour it, and ignoring it would
                                                  change behaviour silently
DEFAULT_STOMP_CERT_VALIDATOR                      ignored when None; otherwise refused
the other keys (see ``_IGNORED``)                 ignored, with an INFO log naming each
================================================  ==========================================
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

SETTING = "DJANGO_OUTBOX_PATTERN"
SOURCE_NAME = SETTING

_RENAMED = {
    "DEFAULT_STOMP_HOST_AND_PORTS": "STOMP_HOSTS",
    "DEFAULT_STOMP_USERNAME": "STOMP_USERNAME",
    "DEFAULT_STOMP_PASSCODE": "STOMP_PASSCODE",
    "DEFAULT_STOMP_VHOST": "STOMP_VHOST",
    "DEFAULT_STOMP_HEARTBEATS": "STOMP_HEARTBEATS",
    "DEFAULT_STOMP_USE_SSL": "STOMP_USE_SSL",
    "DEFAULT_STOMP_KEY_FILE": "STOMP_SSL_KEY_FILE",
    "DEFAULT_STOMP_CERT_FILE": "STOMP_SSL_CERT_FILE",
    "DEFAULT_STOMP_CA_CERTS": "STOMP_SSL_CA_CERTS",
    "DEFAULT_STOMP_SSL_PASSWORD": "STOMP_SSL_PASSWORD",
    "DEFAULT_PRODUCER_WAITING_TIME": "POLL_INTERVAL",
    "DEFAULT_MAXIMUM_RETRY_ATTEMPTS": "MAX_ATTEMPTS",
    "DEFAULT_MAXIMUM_BACKOFF": "RECONNECT_BACKOFF_MAX",
    "DAYS_TO_KEEP_DATA": "DAYS_TO_KEEP_DATA",
}

# Extension points pgoutbox does not have: accepted only at django-outbox-pattern's default.
_DEFAULT_ONLY: dict[str, Any] = {
    "DEFAULT_CONNECTION_CLASS": "stomp.StompConnection12",
    "DEFAULT_CONSUMER_LISTENER_CLASS": "django_outbox_pattern.listeners.ConsumerListener",
    "DEFAULT_GENERATE_HEADERS": "django_outbox_pattern.headers.generate_headers",
    "DEFAULT_PUBLISHED_CLASS": "django_outbox_pattern.models.Published",
    "DEFAULT_RECEIVED_CLASS": "django_outbox_pattern.models.Received",
    "DEFAULT_STOMP_CERT_VALIDATOR": None,
}

# Keys with no meaning in pgoutbox, each with the reason logged when it is present.
_IGNORED = {
    "DEFAULT_PRODUCER_LISTENER_CLASS": "unused by django-outbox-pattern itself since 3.0.6",
    "DEFAULT_PAUSE_FOR_RETRY": "failed events are retried with RETRY_BACKOFF_BASE/MAX",
    "DEFAULT_WAIT_RETRY": "failed events are retried with RETRY_BACKOFF_BASE/MAX",
    "DEFAULT_PUBLISHED_CHUNK_SIZE": "a fetch size only; the relay claims BATCH_SIZE events",
    "DEFAULT_STOMP_SSL_VERSION": "stomp.py negotiates the TLS version itself",
    "DEFAULT_CONSUMER_PROCESS_MSG_ON_BACKGROUND": (
        "callbacks always run off stomp.py's receiver thread, so heartbeats keep flowing"
    ),
    "DEFAULT_CONSUMER_SHUTDOWN_TIMEOUT": "on SIGTERM the consumer finishes the current message",
    "DEFAULT_CONSUMER_MAX_RETRY_ATTEMPTS": (
        "a database error in the consumer leaves the message to the broker's redelivery"
    ),
    "DEFAULT_CONSUMER_RETRY_WAIT": (
        "a database error in the consumer leaves the message to the broker's redelivery"
    ),
    "REMOVE_DATA_CACHE_TTL": "no cleanup runs in the hot path, so no cache throttles it",
    "OUTBOX_PATTERN_PUBLISHER_CACHE_KEY": "no cleanup runs in the hot path",
    "OUTBOX_PATTERN_CONSUMER_CACHE_KEY": "no cleanup runs in the hot path",
    "DEFAULT_STOMP_OUTGOING_HEARTBEAT": "never implemented by django-outbox-pattern",
    "DEFAULT_STOMP_INCOMING_HEARTBEAT": "never implemented by django-outbox-pattern",
    "DEFAULT_PRODUCER_PROCESS_MSG_ON_BACKGROUND": "removed from django-outbox-pattern",
    "DEFAULT_CONSUMER_PROCESS_MSG_WORKERS": "removed from django-outbox-pattern",
    "DEFAULT_PRODUCER_PROCESS_MSG_WORKERS": "removed from django-outbox-pattern",
    "DEFAULT_STOMP_PROCESS_MSG_WORKERS": "removed from django-outbox-pattern",
}

_QUEUE_KEYS = ("DEFAULT_STOMP_QUEUE_HEADERS", "DEFAULT_EXCLUSIVE_QUEUE")
_KNOWN = (*_RENAMED, *_DEFAULT_ONLY, *_IGNORED, *_QUEUE_KEYS)
# django-outbox-pattern's queue headers but prefetch-count (pgoutbox's CONSUMER_PREFETCH).
_QUEUE_HEADERS = {"durable": "true", "auto-delete": "false"}

# The DJANGO_OUTBOX_PATTERN key each PGOUTBOX key of translate()'s result comes from.
SOURCES = {
    **{ours: theirs for theirs, ours in _RENAMED.items()},
    "CONSUMER_PREFETCH": "DEFAULT_STOMP_QUEUE_HEADERS",
    "CONSUMER_QUEUE_HEADERS": "DEFAULT_STOMP_QUEUE_HEADERS",
}


def translate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ``PGOUTBOX`` keys ``DJANGO_OUTBOX_PATTERN`` means.

    Raises ``ImproperlyConfigured`` naming the key for an unknown key or a class path pgoutbox
    cannot honour. Keys without meaning here are logged at INFO and dropped. The values are
    returned as given: ``pgoutbox.conf`` validates them.
    """
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{SOURCE_NAME} must be a dict, got {type(raw).__name__}")
    translated: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _KNOWN:
            close = difflib.get_close_matches(str(key), _KNOWN, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ImproperlyConfigured(f"{SOURCE_NAME}[{key!r}] is not a setting{hint}")
        if key in _RENAMED:
            translated[_RENAMED[key]] = value
        elif key in _DEFAULT_ONLY:
            if value != _DEFAULT_ONLY[key]:
                raise ImproperlyConfigured(
                    f"{SOURCE_NAME}[{key!r}] = {value!r} is not supported by pgoutbox (only "
                    f"{_DEFAULT_ONLY[key]!r}); remove it rather than have it ignored"
                )
        elif key in _IGNORED:
            logger.info("%s[%r] is ignored: %s", SOURCE_NAME, key, _IGNORED[key])
    translated.update(_queue_settings(raw))
    return translated


def _queue_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """DEFAULT_STOMP_QUEUE_HEADERS (prefetch-count split out) and DEFAULT_EXCLUSIVE_QUEUE."""
    if not any(key in raw for key in _QUEUE_KEYS):
        return {}
    translated: dict[str, Any] = {}
    key = "DEFAULT_STOMP_QUEUE_HEADERS"
    headers = dict(_QUEUE_HEADERS)
    if key in raw:
        value = raw[key]
        if not isinstance(value, Mapping):
            raise ImproperlyConfigured(f"{SOURCE_NAME}[{key!r}] must be a dict, got {value!r}")
        headers = {str(k): _header_text(v) for k, v in value.items()}
        prefetch = headers.pop("prefetch-count", None)
        if prefetch is not None:
            count = int(prefetch) if prefetch.isdigit() else prefetch
            translated["CONSUMER_PREFETCH"] = count
    if "DEFAULT_EXCLUSIVE_QUEUE" in raw:
        exclusive = raw["DEFAULT_EXCLUSIVE_QUEUE"]
        if not isinstance(exclusive, bool):
            raise ImproperlyConfigured(
                f"{SOURCE_NAME}['DEFAULT_EXCLUSIVE_QUEUE'] must be True or False, got {exclusive!r}"
            )
        headers["exclusive"] = _header_text(exclusive)
    translated["CONSUMER_QUEUE_HEADERS"] = headers
    return translated


def _header_text(value: Any) -> str:
    # django-outbox-pattern let stomp.py write values with "%s": True went out as "True".
    return str(value).lower() if isinstance(value, bool) else str(value)
