"""No code is ever loaded from the database; credentials never reach logs or reprs; STOMP
works over TLS and refuses a broker whose certificate it cannot verify."""

from __future__ import annotations

import ast
import logging
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import pgoutbox
from pgoutbox.conf import Settings, parse_settings
from pgoutbox.errors import TransportUnavailable
from pgoutbox.models import OutboxEvent
from pgoutbox.transports.stomp import StompTransport
from tests.support.tls import TlsTerminator, make_certificate

SRC = Path(pgoutbox.__file__).resolve().parent

# Modules that turn bytes into live objects or code.
_UNSAFE_MODULES = {
    "pickle",
    "_pickle",
    "cPickle",
    "dill",
    "cloudpickle",
    "jsonpickle",
    "marshal",
    "shelve",
}
_UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
# Dynamic imports are allowed only where their input is a setting, never a row; extend this
# list only after checking that.
_DYNAMIC_IMPORTS = {"import_string", "import_module"}
_DYNAMIC_IMPORT_ALLOWED = {
    "runner.py": "TRANSPORT setting",
    "conf.py": "DEFAULT_ENCODER, NON_RETRYABLE_EXCEPTIONS, CAPTURE_EXCEPTION setting values",
    "registry.py": "FUNCTION_MODULES setting (a row's function is only looked up, never imported)",
    "subscribe.py": "the callback argument of manage.py subscribe (the operator's, never a row)",
}


def unsafe_constructs(source: str, filename: str) -> list[str]:
    """Every import of an unsafe module, call of eval/exec/compile/__import__, unsafe YAML
    load, and dynamic import outside the allow-list, as ``file:line what``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in _UNSAFE_MODULES:
                found.append(f"{filename}:{node.lineno} import {name}")
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            owner = getattr(getattr(func, "value", None), "id", "")
            if called in _UNSAFE_CALLS and (isinstance(func, ast.Name) or owner == "builtins"):
                found.append(f"{filename}:{node.lineno} call {called}()")
            if called in {"load", "unsafe_load"} and owner == "yaml":
                found.append(f"{filename}:{node.lineno} call yaml.{called}()")
            if called in _DYNAMIC_IMPORTS and Path(filename).name not in _DYNAMIC_IMPORT_ALLOWED:
                found.append(f"{filename}:{node.lineno} dynamic import {called}()")
    return found


def test_the_scanner_finds_what_it_looks_for():
    sample = (
        "import pickle\nfrom marshal import loads\nimport dill.settings\n"
        "eval('1')\nbuiltins.exec('x')\nyaml.load(s)\nimport_string(row.function)\n"
        "re.compile('x')\nyaml.safe_load(s)\nimport json\n"  # these three are fine
    )
    assert len(unsafe_constructs(sample, "relay/bad.py")) == 7


def test_no_code_is_loaded_from_the_database():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 10
    found = [
        hit for f in files for hit in unsafe_constructs(f.read_text(), str(f.relative_to(SRC)))
    ]
    assert found == []


SECRET = f"pass-{uuid.uuid4().hex}"


def test_credentials_stay_out_of_reprs_and_setting_errors():
    parsed = parse_settings({"STOMP_PASSCODE": SECRET, "STOMP_SSL_PASSWORD": SECRET})
    transport = StompTransport(parsed)
    for text in (repr(parsed), str(parsed), repr(transport), str(transport)):
        assert SECRET not in text
    assert "guest@127.0.0.1:61613" in repr(transport)
    for key in ("STOMP_PASSCODE", "STOMP_SSL_PASSWORD"):
        with pytest.raises(ImproperlyConfigured, match=key) as error:
            parse_settings({key: SECRET.encode()})  # wrong type: bytes
        assert SECRET not in str(error.value)
    assert isinstance(parsed, Settings)


@pytest.mark.django_db(transaction=True)
def test_credentials_stay_out_of_a_relay_runs_log(relay_process):
    db_secret = f"db-{uuid.uuid4().hex}"
    # The broker refuses this passcode: every failure path runs, with every logger at DEBUG.
    listener = relay_process(
        overrides={"STOMP_PASSCODE": SECRET, "RECONNECT_BACKOFF_MAX": 0.5},
        root_log="DEBUG",
        PGPASSWORD=db_secret,  # trust authentication ignores it; the relay still holds it
    )
    listener.wait_connected()
    pgoutbox.send("/queue/pgoutbox-never-sent", "x")
    listener.wait_for_output("broker unavailable", count=2, timeout=20)
    assert listener.terminate() == 0
    output = listener.output()
    assert "refused the connection" in output  # the failure is reported...
    assert "CONNECT" in output  # ...and stomp.py logged its frames
    assert SECRET not in output and db_secret not in output
    [event] = OutboxEvent.objects.all()
    assert SECRET not in event.last_error


@pytest.mark.parametrize(
    "shape",
    ["{h}", "a{h} b{h},c{h}}}d{h}'e{h}\"f{h}\\g{h}:h{h}", "line{h}\nbreak{h}\rret{h}"],
    ids=["plain", "punctuation", "line-breaks"],
)
def test_any_passcode_is_redacted_from_stomp_debug_logs(shape, stomp_broker, caplog):
    """Issue: the mask stopped at the first space, comma, quote or backslash of a passcode."""
    marker = uuid.uuid4().hex[:12]
    passcode = shape.format(h=marker)
    caplog.set_level(logging.DEBUG, logger="stomp.py")
    transport = StompTransport(
        parse_settings(
            {"STOMP_HOSTS": [stomp_broker], "STOMP_PASSCODE": passcode, "STOMP_CONNECT_TIMEOUT": 3}
        )
    )
    with pytest.raises(TransportUnavailable):  # the broker refuses it: every frame was logged
        transport.open()
    transport.close()
    assert "passcode:" in caplog.text  # the frame was logged...
    assert marker not in caplog.text  # ...without any part of the passcode


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory, stomp_broker) -> TlsTerminator:
    """stunnel with a self-signed certificate for "localhost" in front of RabbitMQ's STOMP."""
    terminator = TlsTerminator.start(tmp_path_factory.mktemp("tls"), stomp_broker)
    yield terminator
    terminator.stop()


def _tls_settings(tls_broker, ca_certs):
    return override_settings(
        PGOUTBOX={
            **settings.PGOUTBOX,
            "STOMP_USE_SSL": True,
            "STOMP_SSL_CA_CERTS": str(ca_certs),
            "STOMP_HOSTS": [("localhost", tls_broker.port)],
            "RECONNECT_BACKOFF_MAX": 0.5,
            "STOMP_CONNECT_TIMEOUT": 3,
        }
    )


@pytest.mark.django_db(transaction=True)
def test_events_are_delivered_over_tls(tls_broker, relay_thread, counting_consumer):
    consumer = counting_consumer()  # plain STOMP, straight to the broker
    accepted = tls_broker.accepted_connections()
    with _tls_settings(tls_broker, tls_broker.cert):
        relay_thread()
    message_id = pgoutbox.send(consumer.destination, {"over": "tls"})
    assert not consumer.wait_for_ids([str(message_id)], timeout=10)
    assert tls_broker.accepted_connections() > accepted, "the relay went through stunnel"
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_broker_certificate_from_another_ca_is_refused(
    tls_broker, relay_thread, counting_consumer, tmp_path
):
    other_ca, _ = make_certificate(tmp_path, "other-ca")
    with _tls_settings(tls_broker, other_ca):
        from pgoutbox.conf import get_settings

        with pytest.raises(TransportUnavailable):
            StompTransport(get_settings()).open()
        consumer = counting_consumer()
        relay_thread()
    message_id = pgoutbox.send(consumer.destination, "must not travel")
    time.sleep(2.0)
    assert consumer.snapshot() == []
    event = OutboxEvent.objects.get(message_id=message_id)
    assert event.status == "pending" and event.attempts >= 1 and event.last_error
