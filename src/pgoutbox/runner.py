"""Build a relay from settings: the part the management commands share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import psycopg
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
) -> Relay:
    """Validate settings and return a relay on ``PGOUTBOX['DATABASE']`` (wrong settings raise)."""
    settings = get_settings()
    params = db.connection_params(settings.database)

    def connect(autocommit: bool) -> psycopg.Connection[Any]:
        return db.connect(params, autocommit=autocommit)

    return Relay(
        settings=settings,
        transport=transport or build_transport(settings),
        connect=connect,
        streams=streams,
        batch_size=batch_size,
        poll_interval=poll_interval,
        listen=listen,
    )
