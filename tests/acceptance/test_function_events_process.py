"""Function events across real processes: a producer SIGKILLed right after COMMIT, and an
``outbox_listen`` process that learned the registry at start-up runs the call."""

from __future__ import annotations

import json
import signal

import pytest

from pgoutbox.models import OutboxEvent
from tests.app.models import Order
from tests.support.function_events import wait_until
from tests.support.relay_runner import manage_env, run_command, start_command, terminate

pytestmark = pytest.mark.django_db(transaction=True)

# The first on-commit callback kills the process: pgoutbox's own hook never runs.
PRODUCER = """
import os, signal
from django.db import transaction
from tests.app import outbox
with transaction.atomic():
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
    outbox.create_order("orphan")
"""


def test_listener_process_runs_the_call_of_a_producer_killed_after_commit(tmp_path):
    env = {
        **manage_env(PGOUTBOX_OVERRIDES=json.dumps({"PUBLISH_ON_COMMIT_LEASE": 0.5})),
        "DJANGO_SETTINGS_MODULE": "tests.support.fault_settings",
    }
    producer = run_command(["shell", "-c", PRODUCER], env=env)
    assert producer.returncode == -signal.SIGKILL, producer.stderr
    row = OutboxEvent.objects.get()  # committed before the kill
    assert (row.kind, row.function, row.status) == (
        "call",
        "tests.app.outbox.create_order",
        "pending",
    )
    assert not Order.objects.exists()

    log = tmp_path / "listen.log"
    listener = start_command(["outbox_listen", "--poll-interval", "0.2"], env=env, log=log)
    try:
        wait_until(lambda: Order.objects.filter(reference="orphan").exists(), timeout=20)
        wait_until(lambda: not OutboxEvent.objects.exists())
    finally:
        assert terminate(listener) == 0, log.read_text()
    assert Order.objects.count() == 1
