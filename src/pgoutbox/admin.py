"""Django admin for the outbox and the consumer inbox: read-only views, requeue and purge.

Built for a big, delete-heavy table: no full ``COUNT(*)`` (estimated counts), filters that
walk partial indexes, search by exact values only, newest first by primary key, and the body
loaded on the detail page only.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connections, router
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from pgoutbox.errors import TASK_ABANDONED_PATH
from pgoutbox.models import OutboxEvent, OutboxTaskResult, ReceivedMessage
from pgoutbox.pagination import EstimatedCountPaginator
from pgoutbox.sql import query
from pgoutbox.status import requeue_dead

SHOWN_BODY_CHARS = 20_000
SHOWN_ERROR_CHARS = 60
STREAM_CHOICES = 50


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def decode_body(body: bytes | memoryview | None) -> str:
    """The body as text: pretty-printed when it is JSON, UTF-8 when it decodes, else its bytes'
    ``repr``; cut to :data:`SHOWN_BODY_CHARS`."""
    raw = bytes(body or b"")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return shorten(repr(raw), SHOWN_BODY_CHARS)
    with contextlib.suppress(ValueError):  # not JSON: shown as text
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
    return shorten(text, SHOWN_BODY_CHARS)


def _pre(text: str) -> SafeString:
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


def _pretty_json(value: Any) -> SafeString:
    return _pre(shorten(json.dumps(value, indent=2, ensure_ascii=False), SHOWN_BODY_CHARS))


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("message", "message"), ("call", "call")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(kind=self.value()) if self.value() else queryset


class StreamFilter(admin.SimpleListFilter):
    """Streams with pending or dead events, read from the partial indexes (no table scan)."""

    title = "stream"
    parameter_name = "stream"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        alias = router.db_for_read(OutboxEvent)
        with connections[alias].cursor() as cursor:
            cursor.execute(query("event_streams"), {"limit": STREAM_CHOICES})
            streams = [stream for (stream,) in cursor.fetchall()]
        return [(stream, stream or "(default)") for stream in streams]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset if value is None else queryset.filter(stream=value)


class FastAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only, newest first, estimated counts, search by exact value."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice is a scan per choice
    list_per_page = 100
    ordering = ("-id",)
    sortable_by = ("id",)
    search_help_text = "An exact message id, destination or function."
    uuid_field = "message_id"  # a search term that is a UUID looks here

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(**{self.uuid_field: str(uuid.UUID(term))}), False
        except ValueError:
            return queryset.filter(self.exact_text_search(term)), False

    def exact_text_search(self, term: str) -> Q:
        raise NotImplementedError


def _dead_ids(queryset: QuerySet[OutboxEvent]) -> list[int]:
    """The dead events among the selected ones (walks the dead-events index, also when every
    event of a huge list is selected)."""
    return list(queryset.filter(status=OutboxEvent.Status.DEAD).values_list("pk", flat=True))


@admin.register(OutboxEvent)
class OutboxEventAdmin(FastAdmin):
    list_display = (
        "id",
        "kind",
        "target",
        "stream",
        "status",
        "attempts",
        "available_at",
        "short_error",
    )
    list_filter = ("status", KindFilter, StreamFilter)
    search_fields = ("message_id", "destination", "function")
    actions = ("requeue", "purge")
    fields = (
        "id",
        "message_id",
        "kind",
        "status",
        "stream",
        "destination",
        "function",
        "pretty_args",
        "pretty_headers",
        "pretty_body",
        "attempts",
        "last_error",
        "created_at",
        "available_at",
        "sent_at",
        "ordered",
    )
    readonly_fields = fields

    def exact_text_search(self, term: str) -> Q:
        return Q(destination=term) | Q(function=term)

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutboxEvent]:
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match is not None and match.url_name == "pgoutbox_outboxevent_changelist":
            # A body may be megabytes; the list never shows it.
            queryset = queryset.defer("body", "headers", "args")
        return queryset

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        # Django 6.1 passes action_location (and warns about overrides without it); 5.2 does not.
        parent = super().get_actions
        actions: dict[str, Any] = (
            parent(request) if action_location is None else parent(request, action_location)  # type: ignore[call-arg]
        )
        actions.pop("delete_selected", None)  # it would delete pending events too: use purge
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status == OutboxEvent.Status.DEAD)

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.display(description="destination or function")
    def target(self, event: OutboxEvent) -> str:
        return event.destination or event.function or ""

    @admin.display(description="last error")
    def short_error(self, event: OutboxEvent) -> str:
        return shorten(event.last_error or "", SHOWN_ERROR_CHARS)

    @admin.display(description="body")
    def pretty_body(self, event: OutboxEvent) -> SafeString:
        return _pre(decode_body(event.body))

    @admin.display(description="headers")
    def pretty_headers(self, event: OutboxEvent) -> SafeString:
        return _pretty_json(event.headers)

    @admin.display(description="args")
    def pretty_args(self, event: OutboxEvent) -> SafeString:
        return _pretty_json(event.args)

    @admin.action(description="Requeue selected dead events", permissions=["requeue"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        done = requeue_dead(_dead_ids(queryset), all_dead=False, using=queryset.db)
        self._report(request, "requeued", done)

    @admin.action(description="Purge selected dead events", permissions=["delete"])
    def purge(
        self, request: HttpRequest, queryset: QuerySet[OutboxEvent]
    ) -> TemplateResponse | None:
        dead = queryset.filter(status=OutboxEvent.Status.DEAD)
        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "admin/pgoutbox/outboxevent/purge_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Purge dead events?",
                    "opts": self.opts,
                    "events": list(dead.defer("body", "headers", "args")[:1000]),
                    "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
                    "select_across": request.POST.get("select_across", "0"),
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(
                query("purge_dead"), {"ids": _dead_ids(queryset), "abandoned": TASK_ABANDONED_PATH}
            )
            done = sorted(row[0] for row in cursor.fetchall())
        self._report(request, "purged", done)
        return None

    def _report(self, request: HttpRequest, verb: str, done: list[int]) -> None:
        shown = done if len(done) <= 20 else [*done[:20], "…"]
        self.message_user(request, f"{len(done)} dead events {verb}: {shown}", messages.SUCCESS)
        # Counted from the ticked boxes; "select all" across pages is not counted (a scan).
        skipped = len(request.POST.getlist(ACTION_CHECKBOX_NAME)) - len(done)
        if request.POST.get("select_across", "0") == "0" and skipped > 0:
            self.message_user(
                request, f"{skipped} selected events were not dead: left alone", messages.WARNING
            )

    # -- requeue one event from its page --------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(require_POST(self.requeue_one))
        return [
            path("<int:object_id>/requeue/", view, name=self._url_name("requeue")),
            *super().get_urls(),
        ]

    def requeue_one(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if not self.has_requeue_permission(request):
            return HttpResponse("requeueing events needs the change permission", status=403)
        event = get_object_or_404(self.get_queryset(request), pk=object_id)
        done = requeue_dead([event.pk], all_dead=False, using=router.db_for_write(OutboxEvent))
        if done:
            self.message_user(request, f"Event {event.pk} requeued: pending, due now")
        else:
            self.message_user(request, f"Event {event.pk} is not dead", messages.WARNING)
        return HttpResponseRedirect(reverse(f"admin:{self._url_name('change')}", args=[event.pk]))

    def _url_name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        event = context.get("original")
        context["can_requeue"] = (
            event is not None
            and event.status == OutboxEvent.Status.DEAD
            and self.has_requeue_permission(request)
        )
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(ReceivedMessage)
class ReceivedMessageAdmin(FastAdmin):
    list_display = ("id", "message_id", "destination", "status", "received_at", "processed_at")
    list_filter = ("status",)
    search_fields = ("message_id", "destination")
    fields = (
        "id",
        "message_id",
        "destination",
        "status",
        "pretty_headers",
        "pretty_body",
        "received_at",
        "processed_at",
    )
    readonly_fields = fields

    def exact_text_search(self, term: str) -> Q:
        # The inbox stores message ids as text: a foreign producer's need not be a UUID.
        return Q(message_id=term) | Q(destination=term)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        return (queryset.filter(self.exact_text_search(term)) if term else queryset), False

    @admin.display(description="body")
    def pretty_body(self, message: ReceivedMessage) -> SafeString:
        return _pre(decode_body(message.body))

    @admin.display(description="headers")
    def pretty_headers(self, message: ReceivedMessage) -> SafeString:
        return _pretty_json(message.headers)


@admin.register(OutboxTaskResult)
class OutboxTaskResultAdmin(FastAdmin):
    """Django tasks' results (pgoutbox.tasks); a task that died is also a dead event above."""

    list_display = (
        "id",
        "task_path",
        "queue_name",
        "state",
        "priority",
        "enqueued_at",
        "finished_at",
    )
    list_filter = ("status", "queue_name")
    search_fields = ("task_path",)
    search_help_text = "An exact result id or task path."
    uuid_field = "id"
    ordering = ("-enqueued_at",)
    sortable_by = ("enqueued_at",)
    fields = (
        "id",
        "task_path",
        "backend",
        "queue_name",
        "priority",
        "state",
        "pretty_arguments",
        "pretty_return_value",
        "pretty_errors",
        "worker_ids",
        "enqueued_at",
        "run_after",
        "started_at",
        "last_attempted_at",
        "finished_at",
        "event_id",
    )
    readonly_fields = fields

    def exact_text_search(self, term: str) -> Q:
        return Q(task_path=term)

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutboxTaskResult]:
        # The status get_result() and outbox_status give (pgoutbox_task_state_v2), not the
        # row's own: a task whose relay stopped is READY again, one dead without an outcome
        # of its own FAILED.
        results: QuerySet[OutboxTaskResult] = super().get_queryset(request)
        return results.annotate(state=RawSQL(query("task_state_of_result"), ()))

    @admin.display(description="status")
    def state(self, result: OutboxTaskResult) -> str:
        return str(getattr(result, "state", result.status))

    @admin.display(description="arguments")
    def pretty_arguments(self, result: OutboxTaskResult) -> SafeString:
        return _pretty_json({"args": result.args, "kwargs": result.kwargs})

    @admin.display(description="return value")
    def pretty_return_value(self, result: OutboxTaskResult) -> SafeString:
        return _pretty_json(result.return_value)

    @admin.display(description="errors")
    def pretty_errors(self, result: OutboxTaskResult) -> SafeString:
        return _pre("\n".join(str(error.get("traceback", error)) for error in result.errors))
