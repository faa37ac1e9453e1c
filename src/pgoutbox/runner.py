"""Build relays from settings and command options: the part the management commands share."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.db import connections
from django.utils.module_loading import import_string

from pgoutbox import db
from pgoutbox.conf import Settings, get_settings
from pgoutbox.relay.engine import Relay
from pgoutbox.transports.base import Transport


def build_transport(settings: Settings) -> Transport:
    """Instantiate ``TRANSPORT`` (a dotted path to a class taking the settings)."""
    return cast(Transport, import_string(settings.transport)(settings))


def build_relay(
    *,
    streams: Sequence[str] = (),
    batch_size: int | None = None,
    poll_interval: float | None = None,
    listen: bool,
    transport: Transport | None = None,
    database: str | None = None,
) -> Relay:
    """Validate settings and return a relay serving the database of ``database`` (default
    ``PGOUTBOX['DATABASE']``), connected as ``RELAY_CONNECTIONS`` says (wrong settings raise)."""
    settings = get_settings()
    alias = database or settings.database
    if alias not in connections:
        raise ImproperlyConfigured(f"database alias {alias!r} is not in settings.DATABASES")
    params = db.connection_params(alias, settings.relay_connection(alias))
    broker_wait = settings.stomp_connect_timeout + settings.stomp_receipt_timeout

    def connect(autocommit: bool) -> psycopg.Connection[Any]:
        return db.connect_relay(params, autocommit=autocommit, broker_wait=broker_wait)

    return Relay(
        settings=settings,
        transport=transport or build_transport(settings),
        connect=connect,
        streams=streams,
        batch_size=batch_size,
        poll_interval=poll_interval,
        listen=listen,
        alias=alias,
    )


@dataclass(frozen=True)
class RelayOptions:
    """The relay commands' options, validated whether they came from the command line or from
    ``call_command(..., stream="x", batch_size=10)``."""

    streams: tuple[str, ...]
    databases: tuple[str | None, ...]
    batch_size: int | None
    poll_interval: float | None


def relay_options(options: Mapping[str, Any], *, interval: str = "poll_interval") -> RelayOptions:
    """Read and check ``stream``, ``database``, ``batch_size`` and the interval option; a bad
    value is a ``CommandError`` naming the option."""
    databases = _names(options.get("database"), "--database")
    for alias in databases:
        if alias not in connections:
            raise CommandError(f"--database {alias!r} is not an alias of settings.DATABASES")
    return RelayOptions(
        streams=_names(options.get("stream"), "--stream"),
        databases=databases or (None,),
        batch_size=_positive(options.get("batch_size"), "--batch-size", int),
        poll_interval=_positive(options.get(interval), f"--{interval.replace('_', '-')}", float),
    )


def build_relays(options: RelayOptions, *, listen: bool) -> list[Relay]:
    """One relay per database of ``options``."""
    return [
        build_relay(
            streams=options.streams,
            batch_size=options.batch_size,
            poll_interval=options.poll_interval,
            listen=listen,
            database=database,
        )
        for database in options.databases
    ]


def run_relays(relays: Sequence[Relay], stop: threading.Event) -> None:
    """Run every relay until ``stop``: the first in this thread, the others beside it."""
    others = [
        threading.Thread(target=relay.run, args=(stop,), name=f"pgoutbox-{relay.alias}")
        for relay in relays[1:]
    ]
    for thread in others:
        thread.start()
    try:
        relays[0].run(stop)
    finally:
        stop.set()
        for thread in others:
            thread.join()


def _names(value: Any, option: str) -> tuple[str, ...]:
    # call_command("events_relay", stream="x") passes a str where the parser gives a list.
    names = [value] if isinstance(value, str) else value or []
    if not isinstance(names, list | tuple) or not all(isinstance(name, str) for name in names):
        raise CommandError(f"{option} takes names (str), got {value!r}")
    return tuple(names)


def _positive(value: Any, option: str, kind: Callable[[Any], Any]) -> Any:
    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or number <= 0 or number != float(value):
        raise CommandError(f"{option} must be a positive number, got {value!r}")
    return number
