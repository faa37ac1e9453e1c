"""``manage.py outbox_dlq list|replay|purge <queue>`` against real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from pgoutbox.conf import get_settings
from pgoutbox.consumer.payload import Payload
from pgoutbox.consumer.subscriber import Subscriber
from pgoutbox.models import ReceivedMessage
from tests.app.models import Order
from tests.support.consumer import Calls, SubscriberThread, send_raw, wait_until
from tests.support.relay_runner import run_command

pytestmark = pytest.mark.django_db(transaction=True)


def dlq(*args: str, **options: object) -> str:
    out = io.StringIO()
    call_command("outbox_dlq", *args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def consumer(
    transactional_db: None, stomp_broker: tuple[str, int], queue_name: str
) -> Iterator[tuple[dict[str, bool], Calls]]:
    """A consumer of ``/queue/<queue_name>`` that dead-letters everything until its switch
    says ``accept``, then records an Order and the inbox row."""
    switch = {"accept": False}
    calls = Calls()

    def callback(payload: Payload) -> None:
        if not switch["accept"]:
            payload.nack()
        else:
            with transaction.atomic():
                Order.objects.create(reference=payload.body["ref"])
                payload.save()
        calls.add(payload)

    thread = SubscriberThread(
        Subscriber(callback, f"/queue/{queue_name}", settings=dataclasses.replace(get_settings()))
    ).start()
    yield switch, calls
    thread.stop()


def dead_letter(
    broker: tuple[str, int], queue_name: str, calls: Calls, caplog, refs: list[str]
) -> None:
    before = caplog.text.count("dead-lettered")
    for ref in refs:
        send_raw(broker, f"/queue/{queue_name}", f'{{"ref": "{ref}"}}', {"dop-msg-id": ref})
    assert wait_until(lambda: caplog.text.count("dead-lettered") == before + len(refs))


def test_list_replay_and_purge(consumer, stomp_broker, queue_name, caplog):
    switch, calls = consumer
    dead_letter(stomp_broker, queue_name, calls, caplog, ["d1", "d2", "d3"])

    listed = dlq("list", queue_name)
    assert [line.split("\t")[:3] for line in listed.splitlines()[:3]] == [
        [ref, f"/queue/{queue_name}", "payload.nack()"] for ref in ("d1", "d2", "d3")
    ]
    assert '{"ref": "d1"}' in listed
    assert "3 dead letters shown" in listed
    assert "3 dead letters shown" in dlq("list", queue_name)  # listing consumes nothing
    assert "2 dead letters shown (at most 2)" in dlq("list", queue_name, limit=2)

    switch["accept"] = True
    assert "3 dead letters replayed from DLQ." in dlq("replay", queue_name)
    assert [p.message_id for p in calls.wait_for(6)][3:] == ["d1", "d2", "d3"]
    assert wait_until(lambda: ReceivedMessage.objects.count() == 3)
    assert sorted(Order.objects.values_list("reference", flat=True)) == ["d1", "d2", "d3"]
    assert "0 dead letters shown" in dlq("list", queue_name)

    switch["accept"] = False
    dead_letter(stomp_broker, queue_name, calls, caplog, ["p1", "p2"])
    with pytest.raises(CommandError, match="add --yes"):
        dlq("purge", queue_name)
    assert "2 dead letters shown" in dlq("list", queue_name)
    assert "2 dead letters purged from DLQ." in dlq("purge", queue_name, yes=True)
    assert "0 dead letters shown" in dlq("list", queue_name)


def test_a_missing_dlq_and_a_destination_for_a_queue_are_clear_errors(stomp_broker, queue_name):
    with pytest.raises(CommandError, match=f"NOT_FOUND - no queue 'DLQ.{queue_name}'"):
        dlq("list", queue_name)
    with pytest.raises(CommandError, match="'/queue/orders' is not a queue name"):
        dlq("list", "/queue/orders")
    with pytest.raises(CommandError, match="--limit must be a positive integer"):
        dlq("list", queue_name, limit=0)


def test_purge_without_yes_from_the_command_line(queue_name):
    result = run_command(["outbox_dlq", "purge", queue_name])
    assert result.returncode != 0
    assert "add --yes" in result.stderr
