"""Settings: one validated object; a wrong key or value names the key."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from pgoutbox.conf import Settings, get_settings, parse_settings


def test_defaults():
    settings = parse_settings({})
    assert settings == Settings()
    assert settings.stomp_vhost == "/"
    assert settings.stomp_persistent is True


def test_values_are_parsed():
    settings = parse_settings(
        {
            "BATCH_SIZE": 50,
            "POLL_INTERVAL": 2,
            "STOMP_HOSTS": [["mq", 61614]],
            "STOMP_USE_SSL": True,
        }
    )
    assert settings.batch_size == 50
    assert settings.poll_interval == 2.0
    assert settings.stomp_hosts == (("mq", 61614),)
    assert settings.stomp_use_ssl is True


def test_a_typo_names_the_key_and_the_closest_one():
    with pytest.raises(ImproperlyConfigured, match=r"'BATCH_SIZ'.*did you mean 'BATCH_SIZE'"):
        parse_settings({"BATCH_SIZ": 10})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("BATCH_SIZE", "500", "positive int"),
        ("BATCH_SIZE", 0, "positive int"),
        ("BATCH_SIZE", True, "positive int"),
        ("POLL_INTERVAL", -1, "positive number"),
        ("STOMP_HOSTS", "localhost:61613", "host, port"),
        ("STOMP_HOSTS", [("localhost", "61613")], "host, port"),
        ("STOMP_HEARTBEATS", (10000,), "pair"),
        ("STOMP_USE_SSL", "yes", "True or False"),
        ("NOTIFY_QUEUE_WARN", 5, r"\(0, 1\]"),
        ("STOMP_SSL_CA_CERTS", 42, "str"),
        ("METRICS_PORT", "9100", "TCP port"),
        ("METRICS_PORT", 0, "TCP port"),
        ("METRICS_PORT", 70000, "TCP port"),
    ],
)
def test_a_wrong_type_names_the_key_and_the_expected_type(key, value, expected):
    with pytest.raises(ImproperlyConfigured, match=rf"PGOUTBOX\['{key}'\] must be .*{expected}"):
        parse_settings({key: value})


def test_backoff_base_above_its_cap_is_refused():
    with pytest.raises(ImproperlyConfigured, match="RETRY_BACKOFF_BASE"):
        parse_settings({"RETRY_BACKOFF_BASE": 10, "RETRY_BACKOFF_MAX": 1})


def test_not_a_dict():
    with pytest.raises(ImproperlyConfigured, match="must be a dict"):
        parse_settings(["BATCH_SIZE"])  # type: ignore[arg-type]


def test_override_settings_is_seen():
    before = get_settings().batch_size
    with override_settings(PGOUTBOX={"BATCH_SIZE": 7}):
        assert get_settings().batch_size == 7
    assert get_settings().batch_size == before


def test_secrets_are_not_in_repr():
    settings = parse_settings({"STOMP_PASSCODE": "s3cr3t-pass", "STOMP_SSL_PASSWORD": "k3y-pass"})
    assert "s3cr3t-pass" not in repr(settings)
    assert "k3y-pass" not in repr(settings)
