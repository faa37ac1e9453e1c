"""Switching from the real django-outbox-pattern and django-jaiminho (installed from the package
index into a scratch virtualenv): outbox-pattern's pending events and inbox are taken over,
0 lost, 0 processed twice; jaiminho's pending events are listed, never loaded."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path

import django
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from pgoutbox.compat.outbox_pattern.factories import factory_consumer
from pgoutbox.compat.outbox_pattern.payloads import Payload
from pgoutbox.models import OutboxEvent
from tests.integration.test_consumer import send_raw

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.packaging]

LEGACY_SETTINGS = """
import os
SECRET_KEY = "x"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django_outbox_pattern", "jaiminho"]
JAIMINHO_CONFIG = {"PUBLISH_STRATEGY": "keep-order"}
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql",
    "HOST": os.environ["PGHOST"], "PORT": os.environ["PGPORT"],
    "USER": os.environ["PGUSER"], "NAME": os.environ["PGDATABASE"]}}
"""

# Run with django-outbox-pattern: its tables, 30 pending events, 5 sent, 1 failed, and an inbox
# of 10 messages its consumer processed.
PRODUCE = """
import json, sys, uuid
import django
django.setup()
from django.core.management import call_command
from django_outbox_pattern.choices import StatusChoice
from django_outbox_pattern.models import Published, Received
call_command("migrate", "django_outbox_pattern", verbosity=0)
destination = sys.argv[1]
pending = [Published.objects.create(destination=destination, body={"n": n}) for n in range(30)]
sent = [Published.objects.create(destination=destination, body={"sent": n},
                                 status=StatusChoice.SUCCEEDED) for n in range(5)]
Published.objects.create(destination=destination, body={"failed": 1}, status=StatusChoice.FAILED)
received = [str(uuid.uuid4()) for _ in range(10)]
for n, msg_id in enumerate(received):
    Received.objects.create(msg_id=msg_id, body={"old": n},
                            headers={"dop-msg-id": msg_id, "destination": destination})
print(json.dumps({"pending": [str(p.id) for p in pending], "sent": [str(p.id) for p in sent],
                  "received": received}))
"""


def _run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="session")
def outbox_pattern_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch virtualenv with django-outbox-pattern, django-jaiminho and this process's
    Django version."""
    venv = tmp_path_factory.mktemp("legacy") / "venv"
    _run(sys.executable, "-m", "venv", venv, timeout=120)
    python = venv / "bin" / "python"
    requirements = [
        "django-outbox-pattern>=3.2,<4",
        "django-jaiminho>=2.2,<3",
        f"Django=={django.get_version()}",
    ]
    _run(python, "-m", "pip", "install", "-q", *requirements, "psycopg[binary]", timeout=600)
    return python


@pytest.fixture
def run_legacy(outbox_pattern_python, tmp_path):
    """Run a Python script with the old libraries on the test database; their tables are
    dropped afterwards."""
    (tmp_path / "legacy_settings.py").write_text(LEGACY_SETTINGS)
    db = connection.settings_dict
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "legacy_settings",
        "PGHOST": str(db["HOST"]),
        "PGPORT": str(db["PORT"]),
        "PGUSER": str(db["USER"]),
        "PGDATABASE": str(db["NAME"]),
    }

    def run(script: str, *args: str) -> str:
        return _run(
            outbox_pattern_python, "-c", script, *args, env=env, cwd=tmp_path, timeout=120
        ).stdout

    yield run
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS published, received, jaiminho_event")
        cursor.execute(
            "DELETE FROM django_migrations WHERE app IN ('django_outbox_pattern', 'jaiminho')"
        )


def test_switch_from_django_outbox_pattern_loses_nothing_and_repeats_nothing(
    run_legacy, relay_thread, stomp_broker, settings
):
    queue = f"pgoutbox-test-{uuid.uuid4().hex[:12]}"
    destination = f"/exchange/amq.direct/{queue}"
    ids = json.loads(run_legacy(PRODUCE, destination).strip().splitlines()[-1])

    call_command("outbox_import_legacy", "outbox-pattern")
    assert OutboxEvent.objects.count() == 30
    call_command("outbox_import_legacy", "outbox-pattern")  # again: nothing new, nothing twice
    assert OutboxEvent.objects.count() == 30

    settings.PGOUTBOX = {
        **settings.PGOUTBOX,
        "CONSUMER_QUEUE_HEADERS": {"durable": "true", "x-expires": "600000"},
    }
    processed: Counter[str] = Counter()
    changed = threading.Condition()

    def callback(payload: Payload) -> None:
        with transaction.atomic():
            payload.save()
        with changed:
            processed[payload.message_id] += 1
            changed.notify_all()

    consumer = factory_consumer()
    consumer.start(callback, destination, queue)
    try:
        # Redeliveries of what the old consumer processed, and of 3 pending events the old
        # publisher had sent just before the switch: as django-outbox-pattern sent them.
        for msg_id in ids["received"] + ids["pending"][:3]:
            send_raw(stomp_broker, destination, json.dumps({"old": msg_id}), {"dop-msg-id": msg_id})
        relay_thread()
        with changed:
            changed.wait_for(lambda: len(processed) >= 30, 20)
        threading.Event().wait(1.0)  # anything extra or repeated would arrive now
    finally:
        consumer.stop()
    assert set(processed) == set(ids["pending"])  # 0 lost, none of the sent or received ones
    assert set(processed.values()) == {1}  # 0 processed twice
    assert not OutboxEvent.objects.exists()


MIGRATE = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
"""


def test_rows_pgoutbox_cannot_publish_are_refused_and_nothing_moves(run_legacy):
    run_legacy(MIGRATE)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO published (id, destination, body, added, expires_at, retry, status, "
            "headers) VALUES (gen_random_uuid(), %s, '{}', now(), now(), 0, 1, '{}')",
            ["your_destination"],
        )
    with pytest.raises(CommandError, match=r"must\s+start with '/'.*'your_destination'"):
        call_command("outbox_import_legacy", "outbox-pattern")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM published")
        assert cursor.fetchone() == (1,)
    assert not OutboxEvent.objects.exists()


def test_missing_tables_are_named():
    with pytest.raises(CommandError, match="no django-outbox-pattern table 'published'"):
        call_command("outbox_import_legacy", "outbox-pattern")
    with pytest.raises(CommandError, match="no django-jaiminho table 'jaiminho_event'"):
        call_command("outbox_import_legacy", "jaiminho")


def test_inbox_columns_are_read_at_run_time(run_legacy):
    run_legacy(MIGRATE)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO received (id, msg_id, headers, body, added, expires_at, retry, status) "
            "VALUES (gen_random_uuid(), 'm-1', '{\"destination\": \"/exchange/x/orders\"}', "
            "'{}', now(), now(), 0, 2)"
        )
        # The inbox is per consumer: by default the queue subscribe would read...
        call_command("outbox_import_legacy", "outbox-pattern")
        # ...or the one named.
        call_command("outbox_import_legacy", "outbox-pattern", consumer="billing")
        cursor.execute("SELECT consumer, message_id FROM pgoutbox_received ORDER BY consumer")
        assert cursor.fetchall() == [("billing", "m-1"), ("orders", "m-1")]
        cursor.execute("ALTER TABLE pgoutbox_received ADD COLUMN shard int NOT NULL DEFAULT 0")
        cursor.execute("ALTER TABLE pgoutbox_received ALTER COLUMN shard DROP DEFAULT")
        try:
            with pytest.raises(CommandError, match=r"required columns .*\['shard'\]"):
                call_command("outbox_import_legacy", "outbox-pattern")
        finally:
            cursor.execute("ALTER TABLE pgoutbox_received DROP COLUMN shard")


JAIMINHO_PRODUCE = """
import pathlib, sys
pathlib.Path("legacy_jobs.py").write_text(
    "from jaiminho.send import save_to_outbox_stream\\n"
    "@save_to_outbox_stream('orders')\\n"
    "def notify(payload):\\n"
    "    pass\\n"
)
sys.path.insert(0, ".")
import django
django.setup()
from django.core.management import call_command
from django.db import transaction
call_command("migrate", verbosity=0)
import legacy_jobs
with transaction.atomic():
    for n in range(3):
        legacy_jobs.notify({"n": n})
"""


def test_jaiminho_pending_events_are_listed_and_never_loaded(run_legacy):
    run_legacy(JAIMINHO_PRODUCE)
    out = io.StringIO()
    with pytest.raises(CommandError, match="Drain them with jaiminho first"):
        call_command("outbox_import_legacy", "jaiminho", stdout=out)
    assert "pending: 3 on stream 'orders' (keep-order strategy)" in out.getvalue()
    assert not OutboxEvent.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE jaiminho_event SET sent_at = now()")  # as jaiminho's relay does
    out = io.StringIO()
    call_command("outbox_import_legacy", "jaiminho", stdout=out)
    assert "nothing to drain" in out.getvalue()
