"""Where the real services are, and what happens when they are not there.

Under ``CI=true`` an unreachable PostgreSQL, RabbitMQ or NATS fails the test; locally it skips.
"""

from __future__ import annotations

import os
import socket

import pytest
from django.conf import settings


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def stomp_address() -> tuple[str, int]:
    return settings.STOMP_HOST, settings.STOMP_PORT


def amqp_url() -> str:
    return os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def nats_url() -> str:
    return os.environ.get("NATS_URL", "nats://127.0.0.1:4222")


def url_address(url: str, default_port: int) -> tuple[str, int]:
    """The host and port of a broker URL (``scheme://[user:pass@]host[:port][/...]``)."""
    location = url.partition("://")[2].partition("/")[0].rpartition("@")[2]
    host, _, port = location.partition(":")
    return host, int(port or default_port)


def require_tcp(name: str, host: str, port: int) -> None:
    """Fail (CI) or skip (locally) unless ``host:port`` accepts a TCP connection."""
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port}: {exc}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
