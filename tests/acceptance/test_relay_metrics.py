"""``events_relay --metrics-port`` as a real process, scraped over HTTP, and the metrics port
given from Python (``call_command``) to every command that serves metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from django.core.management import CommandError, call_command

import pgoutbox
from pgoutbox.models import OutboxEvent
from tests.support.metrics import scrape, wait_for_endpoint
from tests.support.relay_runner import ROOT, manage_env, start_command, terminate
from tests.support.tls import free_port

pytestmark = pytest.mark.django_db(transaction=True)

DESTINATION = "/topic/pgoutbox-test-relay-metrics"  # no subscriber: confirmed and dropped


def published_and_pending(port: int, expected: float) -> dict[str, float]:
    """Scrape until ``expected`` events were published and none is pending (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(port)
        done = samples["pgoutbox_events_published_total"] >= expected
        if (done and samples["pgoutbox_pending_events"] == 0) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def test_events_relay_in_a_loop_serves_metrics(stomp_broker, tmp_path):
    for n in range(3):
        pgoutbox.send(DESTINATION, {"n": n})
    port = free_port()
    log = tmp_path / "relay.log"
    command = ["events_relay", "--run-in-loop", "--loop-interval", "0.2"]
    process = start_command([*command, "--metrics-port", str(port)], log=log)
    try:
        wait_for_endpoint(process, log, port)
        samples = published_and_pending(port, 3)
        assert samples["pgoutbox_events_published_total"] == 3
        assert samples["pgoutbox_pending_events"] == 0
        assert samples["pgoutbox_batch_size_count"] >= 1
    finally:
        exit_code = terminate(process)
    assert exit_code == 0, log.read_text()


_CALL_COMMAND = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command(sys.argv[1], **json.loads(sys.argv[2]))
"""


@pytest.mark.parametrize("as_type", [int, str])
@pytest.mark.parametrize(
    "command",
    [("events_relay", {"run_in_loop": True, "loop_interval": 0.2}), ("outbox_listen", {})],
    ids=lambda c: c[0],
)
def test_call_command_takes_the_metrics_port_as_int_or_str(
    stomp_broker, tmp_path, command, as_type
):
    name, options = command
    pgoutbox.send(DESTINATION, "x")
    port = free_port()
    log = tmp_path / "relay.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CALL_COMMAND,
                name,
                json.dumps({**options, "metrics_port": as_type(port)}),
            ],
            env=manage_env(),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_endpoint(process, log, port)
        assert published_and_pending(port, 1)["pgoutbox_events_published_total"] == 1
    finally:
        exit_code = terminate(process)
    assert exit_code == 0, log.read_text()


BAD_PORTS = [-1, 65536, "70000", "http", "", " ", "80.5", 80.5, True, ["80"]]


@pytest.mark.parametrize("value", BAD_PORTS)
@pytest.mark.parametrize(
    "command",
    [
        ("events_relay", {"run_in_loop": True}),
        ("outbox_listen", {}),
        ("subscribe", {}),
    ],
    ids=lambda c: c[0],
)
def test_a_bad_metrics_port_from_python_names_the_option(command, value: Any):
    name, options = command
    args = ["tests.app.callbacks.slow_record", "/queue/x"] if name == "subscribe" else []
    with pytest.raises(ValueError, match=r"--metrics-port: .* 0 \(any free port\) to 65535, got"):
        call_command(name, *args, metrics_port=value, **options)


def test_events_relay_once_refuses_a_metrics_port_and_relays_nothing():
    pgoutbox.send(DESTINATION, "stays")
    with pytest.raises(CommandError, match="--metrics-port needs --run-in-loop"):
        call_command("events_relay", metrics_port=9100)
    assert OutboxEvent.objects.filter(status="pending").count() == 1
