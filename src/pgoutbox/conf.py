"""``settings.PGOUTBOX`` read and validated once into a frozen object.

Never read at import time: :func:`get_settings` builds the object on first use and Django's
``setting_changed`` signal drops it, so ``override_settings`` works. A wrong key or value raises
``ImproperlyConfigured`` naming the key and what was expected.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from pgoutbox.compat.jaiminho import translation as jaiminho
from pgoutbox.compat.outbox_pattern import translation as outbox_pattern

SETTINGS_NAME = "PGOUTBOX"


@dataclass(frozen=True)
class Settings:
    """Every pgoutbox setting, with its default. Keys of ``PGOUTBOX`` are the upper-cased names."""

    # The alias whose database the relay serves (outbox_listen / events_relay without
    # --database). Producers never read it: they write on the alias of their transaction.
    database: str = "default"
    # Connection settings the relay's own sessions use instead of the alias's, per alias (e.g.
    # the direct HOST/PORT when the alias goes through PgBouncer in transaction mode, where
    # LISTEN and session advisory locks do not work). Keys as in DATABASES: HOST, PORT, USER,
    # PASSWORD, NAME, OPTIONS.
    relay_connections: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    batch_size: int = 500
    # A message batch also stops at about this many bytes of body (at least one message).
    max_batch_bytes: int = 16 * 1024 * 1024
    # How long a call leased by a relay stays its own before another relay may take it over
    # (the call runs under the lease; a crashed relay's calls run again when it ends).
    call_lease: float = 60.0
    poll_interval: float = 1.0
    # pgoutbox.notify = 'adaptive': how often a busy listener looks again for rows whose
    # producers skipped NOTIFY, while such a producer is still in flight.
    adaptive_poll_interval: float = 0.005
    max_attempts: int = 25
    retry_backoff_base: float = 1.0
    retry_backoff_max: float = 300.0
    reconnect_backoff_max: float = 30.0
    heartbeat_interval: float = 10.0
    notify_queue_warn: float = 0.1
    max_body_bytes: int = 4 * 1024 * 1024
    transport: str = "pgoutbox.transports.stomp.StompTransport"
    stomp_hosts: tuple[tuple[str, int], ...] = (("127.0.0.1", 61613),)
    stomp_username: str = "guest"
    stomp_passcode: str = field(default="guest", repr=False)
    stomp_vhost: str = "/"
    stomp_heartbeats: tuple[int, int] = (10000, 10000)
    stomp_use_ssl: bool = False
    stomp_ssl_key_file: str | None = None
    stomp_ssl_cert_file: str | None = None
    stomp_ssl_ca_certs: str | None = None
    stomp_ssl_password: str | None = field(default=None, repr=False)
    stomp_connect_timeout: float = 5.0
    stomp_receipt_timeout: float = 10.0
    stomp_persistent: bool = True
    # The AMQP and NATS transports (transports/amqp.py, transports/nats.py) also use
    # STOMP_CONNECT_TIMEOUT, STOMP_RECEIPT_TIMEOUT (for confirms) and STOMP_PERSISTENT.
    amqp_url: str = field(default="amqp://guest:guest@127.0.0.1:5672/%2F", repr=False)
    amqp_ssl_ca_certs: str | None = None
    amqp_ssl_cert_file: str | None = None
    amqp_ssl_key_file: str | None = None
    amqp_ssl_password: str | None = field(default=None, repr=False)
    nats_url: str = field(default="nats://127.0.0.1:4222", repr=False)
    # The consumer (manage.py subscribe): consumer/subscriber.py.
    consumer_queue_headers: tuple[tuple[str, str], ...] = (
        ("durable", "true"),
        ("auto-delete", "false"),
        ("exclusive", "false"),
    )
    consumer_prefetch: int = 1
    # Function events (@save_to_outbox, @save_to_outbox_stream): producer/functions.py.
    publish_strategy: str = "publish-on-commit"
    publish_on_commit_lease: float = 10.0
    delete_after_send: bool = True
    time_to_delete: datetime.timedelta = datetime.timedelta(days=7)
    days_to_keep_data: int = 30
    # Django tasks (pgoutbox.tasks): event_cleaner deletes finished results older than this.
    task_result_retention: datetime.timedelta = datetime.timedelta(days=7)
    default_encoder: type[json.JSONEncoder] = DjangoJSONEncoder
    keep_order_poison_policy: str = "block"
    function_modules: tuple[str, ...] = ()
    non_retryable_exceptions: tuple[type[BaseException], ...] = ()
    capture_exception: Callable[[BaseException], object] | None = None
    # outbox_listen serves Prometheus metrics on this port (extra 'metrics'); None: off.
    metrics_port: int | None = None

    def relay_connection(self, alias: str) -> dict[str, Any]:
        """``RELAY_CONNECTIONS`` for ``alias``: what the relay's sessions use instead of the
        alias's own connection settings (empty: the alias's settings as they are)."""
        return dict(dict(self.relay_connections).get(alias, ()))


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(key, value, "a positive int")
    return value


def _positive_number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise _bad(key, value, "a positive number of seconds")
    return float(value)


def _fraction(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise _bad(key, value, "a number in (0, 1]")
    return float(value)


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(key, value, "a non-empty str")
    return value


def _optional_text(key: str, value: Any) -> str | None:
    return None if value is None else _text(key, value)


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(key, value, "True or False")
    return value


def _hosts(key: str, value: Any) -> tuple[tuple[str, int], ...]:
    expected = 'a non-empty list of (host, port) pairs, e.g. [("127.0.0.1", 61613)]'
    if not isinstance(value, list | tuple) or not value:
        raise _bad(key, value, expected)
    hosts = []
    for item in value:
        if (
            not isinstance(item, list | tuple)
            or len(item) != 2
            or not isinstance(item[0], str)
            or isinstance(item[1], bool)
            or not isinstance(item[1], int)
        ):
            raise _bad(key, value, expected)
        hosts.append((item[0], item[1]))
    return tuple(hosts)


def _url(*schemes: str, several: bool = False) -> Callable[[str, Any], str]:
    prefixes = tuple(f"{scheme}://" for scheme in schemes)
    expected = "a URL starting with " + " or ".join(prefixes)
    if several:
        expected += " (several separated by commas)"

    def validate(key: str, value: Any) -> str:
        urls = value.split(",") if several and isinstance(value, str) else [value]
        if not all(isinstance(url, str) and url.strip().startswith(prefixes) for url in urls):
            raise _bad(key, value, expected)
        return str(value)

    return validate


def _heartbeats(key: str, value: Any) -> tuple[int, int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        raise _bad(key, value, "a pair of non-negative ints in milliseconds, e.g. (10000, 10000)")
    return (value[0], value[1])


PUBLISH_STRATEGIES = ("publish-on-commit", "keep-order")
POISON_POLICIES = ("block", "dead-letter-and-continue")


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def validate(key: str, value: Any) -> str:
        if value not in choices:
            raise _bad(key, value, " or ".join(repr(c) for c in choices))
        return str(value)

    return validate


def _timedelta(key: str, value: Any) -> datetime.timedelta:
    if not isinstance(value, datetime.timedelta) or value <= datetime.timedelta(0):
        raise _bad(key, value, "a positive datetime.timedelta")
    return value


def _imported(key: str, value: Any, expected: str) -> Any:
    """A dotted path (imported) or the object itself."""
    if not isinstance(value, str):
        return value
    try:
        return import_string(value)
    except ImportError as exc:
        raise _bad(key, value, f"{expected} (cannot import it: {exc})") from exc


def _encoder(key: str, value: Any) -> type[json.JSONEncoder]:
    expected = "a json.JSONEncoder subclass or its dotted path"
    encoder = _imported(key, value, expected)
    if not isinstance(encoder, type) or not issubclass(encoder, json.JSONEncoder):
        raise _bad(key, value, expected)
    return encoder


def _modules(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise _bad(key, value, "a list of module names")
    return tuple(value)


def _exception_classes(key: str, value: Any) -> tuple[type[BaseException], ...]:
    expected = "a list of exception classes (or their dotted paths)"
    if not isinstance(value, list | tuple):
        raise _bad(key, value, expected)
    classes = tuple(_imported(key, v, expected) for v in value)
    if not all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
        raise _bad(key, value, expected)
    return classes


def _optional_callable(key: str, value: Any) -> Callable[[BaseException], object] | None:
    expected = "None, a callable taking the exception, or its dotted path"
    function = None if value is None else _imported(key, value, expected)
    if function is not None and not callable(function):
        raise _bad(key, value, expected)
    return function


_CONNECTION_KEYS = frozenset({"HOST", "PORT", "USER", "PASSWORD", "NAME", "OPTIONS"})


def _relay_connections(key: str, value: Any) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    expected = (
        "a dict of DATABASES alias to a dict of HOST, PORT, USER, PASSWORD, NAME, OPTIONS, "
        'e.g. {"default": {"HOST": "db-direct", "PORT": 5432}}'
    )
    if not isinstance(value, Mapping) or not all(
        isinstance(alias, str)
        and isinstance(overrides, Mapping)
        and set(overrides) <= _CONNECTION_KEYS
        for alias, overrides in value.items()
    ):
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}[{key!r}] must be {expected}"
        )  # never echoed: it may hold a password
    return tuple((alias, tuple(overrides.items())) for alias, overrides in value.items())


def _optional_port(key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise _bad(key, value, "None or a TCP port number (1-65535)")
    return value


# SUBSCRIBE headers the consumer sets itself (CONSUMER_PREFETCH is prefetch-count), and the
# dead-letter arguments it never sets: dead letters go to DLQ.<queue> without queue arguments
# (consumer/connection.py).
CONSUMER_OWN_HEADERS = frozenset(
    {
        "ack",
        "id",
        "destination",
        "receipt",
        "prefetch-count",
        "x-queue-name",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
    }
)


def _queue_headers(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    expected = 'a dict of str to str, e.g. {"durable": "true", "auto-delete": "false"}'
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise _bad(key, value, expected)
    own = sorted(k for k in value if k.lower() in CONSUMER_OWN_HEADERS)
    if own:
        raise _bad(key, value, f"{expected}, without {own} (set by pgoutbox, or never set)")
    return tuple(value.items())


# Their values never appear in an error message: it ends up in logs.
_SECRET_KEYS = frozenset(
    {"STOMP_PASSCODE", "STOMP_SSL_PASSWORD", "AMQP_URL", "AMQP_SSL_PASSWORD", "NATS_URL"}
)


def _bad(key: str, value: Any, expected: str) -> ImproperlyConfigured:
    shown = "(value hidden)" if key.upper() in _SECRET_KEYS else repr(value)
    return ImproperlyConfigured(
        f"{SETTINGS_NAME}[{key!r}] must be {expected}, got {type(value).__name__} {shown}"
    )


_VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "database": _text,
    "relay_connections": _relay_connections,
    "batch_size": _positive_int,
    "max_batch_bytes": _positive_int,
    "call_lease": _positive_number,
    "poll_interval": _positive_number,
    "adaptive_poll_interval": _positive_number,
    "max_attempts": _positive_int,
    "retry_backoff_base": _positive_number,
    "retry_backoff_max": _positive_number,
    "reconnect_backoff_max": _positive_number,
    "heartbeat_interval": _positive_number,
    "notify_queue_warn": _fraction,
    "max_body_bytes": _positive_int,
    "transport": _text,
    "stomp_hosts": _hosts,
    "stomp_username": _text,
    "stomp_passcode": _text,
    "stomp_vhost": _text,
    "stomp_heartbeats": _heartbeats,
    "stomp_use_ssl": _flag,
    "stomp_ssl_key_file": _optional_text,
    "stomp_ssl_cert_file": _optional_text,
    "stomp_ssl_ca_certs": _optional_text,
    "stomp_ssl_password": _optional_text,
    "stomp_connect_timeout": _positive_number,
    "stomp_receipt_timeout": _positive_number,
    "stomp_persistent": _flag,
    "amqp_url": _url("amqp", "amqps"),
    "amqp_ssl_ca_certs": _optional_text,
    "amqp_ssl_cert_file": _optional_text,
    "amqp_ssl_key_file": _optional_text,
    "amqp_ssl_password": _optional_text,
    "nats_url": _url("nats", "tls", several=True),
    "consumer_queue_headers": _queue_headers,
    "consumer_prefetch": _positive_int,
    "publish_strategy": _choice(*PUBLISH_STRATEGIES),
    "publish_on_commit_lease": _positive_number,
    "delete_after_send": _flag,
    "time_to_delete": _timedelta,
    "days_to_keep_data": _positive_int,
    "task_result_retention": _timedelta,
    "default_encoder": _encoder,
    "keep_order_poison_policy": _choice(*POISON_POLICIES),
    "function_modules": _modules,
    "non_retryable_exceptions": _exception_classes,
    "capture_exception": _optional_callable,
    "metrics_port": _optional_port,
}
assert set(_VALIDATORS) == {f.name for f in fields(Settings)}  # every field is validated


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate a ``PGOUTBOX`` dict into :class:`Settings`.

    Raises ``ImproperlyConfigured`` naming the first unknown key (with the closest known one)
    or the first value of the wrong type or range.
    """
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{SETTINGS_NAME} must be a dict, got {type(raw).__name__}")
    known = [name.upper() for name in _VALIDATORS]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ImproperlyConfigured(f"{SETTINGS_NAME}[{key!r}] is not a setting{hint}")
        name = key.lower()
        values[name] = _VALIDATORS[name](key, value)
    parsed = Settings(**values)
    if parsed.retry_backoff_base > parsed.retry_backoff_max:
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}['RETRY_BACKOFF_BASE'] ({parsed.retry_backoff_base}) must not exceed "
            f"{SETTINGS_NAME}['RETRY_BACKOFF_MAX'] ({parsed.retry_backoff_max})"
        )
    tls_keys = [k for k in _AMQP_TLS_KEYS if getattr(parsed, k.lower()) is not None]
    if tls_keys and not parsed.amqp_url.startswith("amqps://"):
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}{tls_keys} are set but {SETTINGS_NAME}['AMQP_URL'] is not an "
            "amqps:// URL: they would be ignored"
        )
    return parsed


_AMQP_TLS_KEYS = (
    "AMQP_SSL_CA_CERTS",
    "AMQP_SSL_CERT_FILE",
    "AMQP_SSL_KEY_FILE",
    "AMQP_SSL_PASSWORD",
)


# Settings dicts of the libraries pgoutbox replaces: each name, the pure function translating it
# into PGOUTBOX keys (raising ImproperlyConfigured for a key it cannot map), and the key of that
# dict each PGOUTBOX key came from. PGOUTBOX wins over them, key by key, so users can switch by
# renaming one dict at a time.
COMPAT_SOURCES: tuple[
    tuple[str, Callable[[Mapping[str, Any]], dict[str, Any]], Mapping[str, str]], ...
] = (
    (outbox_pattern.SETTING, outbox_pattern.translate, outbox_pattern.SOURCES),
    (jaiminho.SETTING, jaiminho.translate, jaiminho.SOURCES),
)


def translate_compat(
    name: str,
    translate: Callable[[Mapping[str, Any]], dict[str, Any]],
    sources: Mapping[str, str],
    raw: Any,
) -> dict[str, Any]:
    """Return the PGOUTBOX keys the settings dict ``name`` (``raw``) stands for, each value
    validated by pgoutbox's rule; an ``ImproperlyConfigured`` names both keys."""
    translated = translate(raw)
    for key, value in translated.items():
        try:
            parse_settings({key: value})
        except ImproperlyConfigured as exc:
            source = sources.get(key, key)
            raise ImproperlyConfigured(f"{name}[{source!r}] (pgoutbox's {key}): {exc}") from exc
    return translated


@functools.cache
def get_settings() -> Settings:
    """Return the validated settings, built from ``settings.PGOUTBOX`` on first use."""
    raw: dict[str, Any] = {}
    for name, translate, sources in COMPAT_SOURCES:
        compat = getattr(django_settings, name, None)
        if compat is not None:
            raw.update(translate_compat(name, translate, sources, compat))
    own = getattr(django_settings, SETTINGS_NAME, {})
    if not isinstance(own, Mapping):
        return parse_settings(own)  # raises, naming the setting
    return parse_settings({**raw, **own})


@receiver(setting_changed)
def _drop_cached_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME or any(setting == name for name, _, _ in COMPAT_SOURCES):
        get_settings.cache_clear()
