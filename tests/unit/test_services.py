"""The test harness itself: under CI an unreachable service fails, it never skips."""

from __future__ import annotations

import socket

import pytest

from tests.support.services import require_tcp


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def test_unreachable_service_fails_under_ci(monkeypatch, closed_port):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="RabbitMQ STOMP is not reachable"):
        require_tcp("RabbitMQ STOMP", "127.0.0.1", closed_port)


def test_unreachable_service_skips_locally(monkeypatch, closed_port):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_tcp("RabbitMQ STOMP", "127.0.0.1", closed_port)
