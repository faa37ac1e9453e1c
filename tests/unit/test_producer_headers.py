"""Header conventions of the replaced libraries: dop-* headers, the correlation id."""

from __future__ import annotations

import uuid

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from pgoutbox.producer.encoding import compat_headers, correlation_id, dop_headers


def test_compat_none_changes_nothing():
    headers = {"x-a": "b"}
    assert compat_headers(None, "/queue/x", headers, None) == (headers, None)


def test_compat_outbox_pattern_adds_dop_headers_with_the_message_id():
    headers, message_id = compat_headers("outbox-pattern", "/queue/x", {"x-a": "b"}, None)
    assert isinstance(message_id, uuid.UUID)
    assert headers is not None
    assert headers["dop-msg-id"] == str(message_id)
    assert headers["dop-msg-destination"] == "/queue/x"
    assert headers["dop-msg-type"] == "Published"
    assert headers["x-a"] == "b"
    given = uuid.uuid4()
    headers, message_id = compat_headers(
        "outbox-pattern", "/queue/x", {"dop-correlation-id": "mine"}, given
    )
    assert message_id == given
    assert headers is not None
    assert (headers["dop-msg-id"], headers["dop-correlation-id"]) == (str(given), "mine")


def test_compat_refuses_an_unknown_convention():
    with pytest.raises(ValueError, match="'jaiminho'"):
        compat_headers("jaiminho", "/queue/x", None, None)


def test_correlation_id_without_a_request_is_a_new_uuid():
    first, second = correlation_id(), correlation_id()
    assert first != second
    uuid.UUID(first)


def test_correlation_id_is_the_request_id_of_request_id_django_log():
    pytest.importorskip(
        "request_id_django_log", reason="pip install 'pgoutbox[request-id]' (the py313 CI cell)"
    )
    from request_id_django_log import local_threading
    from request_id_django_log.middleware import RequestIdDjangoLog

    middleware = RequestIdDjangoLog(lambda request: HttpResponse())
    config = {"REQUEST_ID_HEADER": "HTTP_X_REQUEST_ID", "GENERATE_REQUEST_ID_IF_NOT_FOUND": True}
    try:
        with override_settings(REQUEST_ID_CONFIG=config):
            middleware.process_request(RequestFactory().get("/", HTTP_X_REQUEST_ID="req-42"))
        assert dop_headers(uuid.uuid4(), "/queue/x")["dop-correlation-id"] == "req-42"
        local_threading.request_id = "none"  # the middleware's value for "no request id"
        uuid.UUID(correlation_id())
    finally:
        del local_threading.request_id
