"""The admin on the real test database, through Django's test client (the browser test is in
tests/acceptance/test_admin_browser.py)."""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import pgoutbox
from pgoutbox import admin as outbox_admin
from pgoutbox import pagination
from pgoutbox.models import OutboxEvent, OutboxTaskResult, ReceivedMessage

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:pgoutbox_outboxevent_changelist")


def _event(destination: str = "/queue/a", body: object = None, **changes: object) -> OutboxEvent:
    stream = str(changes.pop("stream", ""))
    pgoutbox.send(destination, {"n": 1} if body is None else body, stream=stream)
    event = OutboxEvent.objects.latest("id")
    if changes:
        OutboxEvent.objects.filter(pk=event.pk).update(**changes)
        event.refresh_from_db()
    return event


def _dead(destination: str = "/queue/a", error: str = "broker rejected: no route") -> OutboxEvent:
    return _event(destination, status="dead", attempts=25, last_error=error)


def _actions(page) -> list[str]:
    form = page.context["action_form"]
    return [] if form is None else [name for name, _ in form.fields["action"].choices if name]


def _change_url(event: OutboxEvent) -> str:
    return reverse("admin:pgoutbox_outboxevent_change", args=[event.pk])


def test_changelist_lists_newest_first_without_a_full_count(admin_client):
    first = _event("/queue/first")
    dead = _dead("/queue/second", "x" * 500)
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(CHANGELIST)
    assert page.status_code == 200
    ids = [event.pk for event in page.context["cl"].result_list]
    assert ids == [dead.pk, first.pk]
    html = page.content.decode()
    assert "/queue/second" in html
    assert "x" * 60 + "… (440 more characters)" in html  # last_error shortened
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the paginator counts the small table exactly"
    assert all("LIMIT" in sql.upper() for sql in counts), counts
    listed = [q["sql"] for q in queries.captured_queries if 'FROM "pgoutbox_event"' in q["sql"]]
    assert all('"pgoutbox_event"."body"' not in sql for sql in listed)  # body is deferred


def test_filters_status_kind_and_stream(admin_client):
    pending = _event("/queue/p", stream="orders")
    dead = _dead("/queue/d")
    OutboxEvent.objects.filter(pk=dead.pk).update(stream="billing")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pgoutbox_event (kind, function, args) "
            "VALUES ('call', 'app.outbox.charge', '{\"args\": [], \"kwargs\": {}}') RETURNING id"
        )
        call_id = cursor.fetchone()[0]

    def listed(query: str) -> list[int]:
        return [e.pk for e in admin_client.get(CHANGELIST + query).context["cl"].result_list]

    assert listed("?status__exact=dead") == [dead.pk]
    assert listed("?kind=call") == [call_id]
    assert listed("?stream=orders") == [pending.pk]
    assert listed("?stream=") == [call_id]  # the default stream, ''
    assert listed("?stream=billing&status__exact=dead") == [dead.pk]
    page = admin_client.get(CHANGELIST)
    stream_filter = next(
        f for f in page.context["cl"].filter_specs if isinstance(f, outbox_admin.StreamFilter)
    )
    assert [value for value, _ in stream_filter.lookup_choices] == ["", "billing", "orders"]


def test_search_by_message_id_destination_or_function(admin_client):
    wanted = _event("/queue/wanted")
    _event("/queue/other")

    def found(term: str) -> list[int]:
        page = admin_client.get(CHANGELIST, {"q": term})
        return [e.pk for e in page.context["cl"].result_list]

    assert found(str(wanted.message_id)) == [wanted.pk]
    assert found("/queue/wanted") == [wanted.pk]
    assert found("wanted") == []  # exact values only: no scan of a big table
    assert found(str(wanted.message_id).upper()) == [wanted.pk]


def test_detail_is_read_only_with_the_body_pretty_printed(admin_client):
    event = _event("/queue/a", {"order": 7, "lines": [{"sku": "X"}]}, headers={"k": "v"})
    page = admin_client.get(_change_url(event))
    html = page.content.decode()
    assert page.status_code == 200
    assert "&quot;order&quot;: 7" in html
    assert '"lines": [\n    {\n      "sku": "X"' in outbox_admin.decode_body(bytes(event.body))
    assert 'name="_save"' not in html  # read-only: nothing to save
    assert "Requeue this dead event" not in html  # only dead events


def test_detail_shortens_a_large_body_and_shows_binary_ones():
    big = json.dumps({"data": "y" * 50_000}).encode()
    text = outbox_admin.decode_body(big)
    assert len(text) < outbox_admin.SHOWN_BODY_CHARS + 100
    assert text.endswith("more characters)")
    assert outbox_admin.decode_body(b"\xff\x00ab") == "b'\\xff\\x00ab'"
    assert outbox_admin.decode_body(memoryview(b"plain text")) == "plain text"


def test_requeue_action_makes_dead_events_pending_and_keeps_the_error(admin_client):
    dead = _dead(error="broker rejected: once")
    pending = _event("/queue/b")
    page = admin_client.post(
        CHANGELIST,
        {"action": "requeue", ACTION_CHECKBOX_NAME: [dead.pk, pending.pk]},
        follow=True,
    )
    messages = [str(m) for m in page.context["messages"]]
    assert f"1 dead events requeued: [{dead.pk}]" in messages
    assert "1 selected events were not dead: left alone" in messages
    dead.refresh_from_db()
    assert (dead.status, dead.attempts, dead.last_error) == ("pending", 0, "broker rejected: once")


def test_requeue_from_the_detail_page(admin_client):
    dead = _dead()
    page = admin_client.get(_change_url(dead))
    assert "Requeue this dead event" in page.content.decode()
    url = reverse("admin:pgoutbox_outboxevent_requeue", args=[dead.pk])
    assert admin_client.get(url).status_code == 405  # POST only
    page = admin_client.post(url, follow=True)
    assert f"Event {dead.pk} requeued: pending, due now" in [
        str(m) for m in page.context["messages"]
    ]
    dead.refresh_from_db()
    assert dead.status == "pending"
    page = admin_client.post(url, follow=True)
    assert f"Event {dead.pk} is not dead" in [str(m) for m in page.context["messages"]]


def test_requeue_needs_the_change_permission(client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_outboxevent"))
    client.force_login(user)
    dead = _dead()
    url = reverse("admin:pgoutbox_outboxevent_requeue", args=[dead.pk])
    assert client.post(url).status_code == 403
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert _actions(page) == []  # no action this user may run
    dead.refresh_from_db()
    assert dead.status == "dead"


def test_purge_asks_for_confirmation_then_deletes_only_dead_events(admin_client):
    dead = _dead("/queue/gone", "poison")
    pending = _event("/queue/stays")
    selected = {"action": "purge", ACTION_CHECKBOX_NAME: [dead.pk, pending.pk]}
    page = admin_client.post(CHANGELIST, selected)
    assert page.status_code == 200
    assert "Yes, I'm sure" in page.content.decode()
    assert [e.pk for e in page.context["events"]] == [dead.pk]
    assert OutboxEvent.objects.filter(pk=dead.pk).exists()  # nothing deleted yet

    page = admin_client.post(CHANGELIST, {**selected, "post": "yes"}, follow=True)
    assert f"1 dead events purged: [{dead.pk}]" in [str(m) for m in page.context["messages"]]
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [pending.pk]
    assert _actions(page) == ["requeue", "purge"]  # no delete_selected: it spares nothing


def test_paginator_estimates_beyond_the_exact_limit(monkeypatch):
    for n in range(30):
        _event(f"/queue/{n}", status="dead" if n < 3 else "pending")
    monkeypatch.setattr(pagination, "EXACT_UP_TO", 10)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE pgoutbox_event")
    whole = pagination.EstimatedCountPaginator(OutboxEvent.objects.all(), 100)
    with CaptureQueriesContext(connection) as queries:
        assert whole.count == 30  # pg_class.reltuples after ANALYZE
    assert any("reltuples" in q["sql"] for q in queries.captured_queries)
    filtered = pagination.EstimatedCountPaginator(OutboxEvent.objects.filter(status="pending"), 5)
    assert filtered.count >= 11  # the planner's estimate, never below what was seen
    small = pagination.EstimatedCountPaginator(OutboxEvent.objects.filter(status="dead"), 5)
    assert small.count == 3  # exact


def test_received_messages_are_listed_and_shown(admin_client):
    message = ReceivedMessage.objects.create(
        message_id="foreign-1", destination="/queue/in", body=b'{"a": 1}', headers={"h": "1"}
    )
    changelist = reverse("admin:pgoutbox_receivedmessage_changelist")
    page = admin_client.get(changelist, {"q": "foreign-1"})
    assert [m.pk for m in page.context["cl"].result_list] == [message.pk]
    page = admin_client.get(reverse("admin:pgoutbox_receivedmessage_change", args=[message.pk]))
    assert "&quot;a&quot;: 1" in page.content.decode()
    assert admin_client.get(reverse("admin:pgoutbox_receivedmessage_add")).status_code == 403


def test_purge_every_dead_event_across_pages(admin_client):
    dead = [_dead(f"/queue/{n}").pk for n in range(3)]
    pending = _event("/queue/stays")
    select_all = {"action": "purge", "select_across": "1", ACTION_CHECKBOX_NAME: [dead[0]]}
    page = admin_client.post(CHANGELIST, select_all)
    assert sorted(e.pk for e in page.context["events"]) == dead
    assert 'name="select_across" value="1"' in page.content.decode()
    page = admin_client.post(CHANGELIST, {**select_all, "post": "yes"}, follow=True)
    assert f"3 dead events purged: {dead}" in [str(m) for m in page.context["messages"]]
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [pending.pk]


def test_task_results_are_listed_searched_and_shown_read_only(admin_client):
    failed = OutboxTaskResult.objects.create(
        id=uuid.uuid4(),
        event_id=1,
        task_path="app.tasks.charge",
        backend="default",
        queue_name="payments",
        status="FAILED",
        args=[7],
        errors=[{"exception_class_path": "builtins.ValueError", "traceback": "ValueError: boom"}],
    )
    OutboxTaskResult.objects.create(
        id=uuid.uuid4(),
        event_id=2,
        task_path="app.tasks.other",
        backend="default",
        queue_name="default",
    )
    changelist = reverse("admin:pgoutbox_outboxtaskresult_changelist")
    page = admin_client.get(changelist)
    assert page.status_code == 200
    assert "app.tasks.charge" in page.content.decode()
    found = admin_client.get(changelist, {"q": str(failed.id)})
    assert [r.pk for r in found.context["cl"].result_list] == [failed.pk]
    found = admin_client.get(changelist, {"q": "app.tasks.other"})
    assert [r.task_path for r in found.context["cl"].result_list] == ["app.tasks.other"]
    detail = admin_client.get(
        reverse("admin:pgoutbox_outboxtaskresult_change", args=[failed.pk])
    ).content.decode()
    assert "ValueError: boom" in detail
    assert "payments" in detail
    assert 'name="_save"' not in detail  # read-only
