"""Where the real services are, and what happens when they are not there.

Under ``CI=true`` an unreachable PostgreSQL or RabbitMQ fails the test; locally it skips.
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


def require_tcp(name: str, host: str, port: int) -> None:
    """Fail (CI) or skip (locally) unless ``host:port`` accepts a TCP connection."""
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port}: {exc}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
