"""``DJANGO_OUTBOX_PATTERN`` settings translated into ``PGOUTBOX`` keys."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from pgoutbox.compat.outbox_pattern import translate
from pgoutbox.conf import get_settings


def test_renamed_keys_map_to_pgoutbox_keys():
    translated = translate(
        {
            "DEFAULT_STOMP_HOST_AND_PORTS": [("mq", 61614)],
            "DEFAULT_STOMP_USERNAME": "user",
            "DEFAULT_STOMP_PASSCODE": "secret",
            "DEFAULT_STOMP_VHOST": "orders",
            "DEFAULT_STOMP_HEARTBEATS": (5000, 5000),
            "DEFAULT_STOMP_USE_SSL": True,
            "DEFAULT_STOMP_KEY_FILE": "/k.pem",
            "DEFAULT_STOMP_CERT_FILE": "/c.pem",
            "DEFAULT_STOMP_CA_CERTS": "/ca.pem",
            "DEFAULT_STOMP_SSL_PASSWORD": "pw",
            "DEFAULT_PRODUCER_WAITING_TIME": 0.5,
            "DEFAULT_MAXIMUM_RETRY_ATTEMPTS": 50,
            "DEFAULT_MAXIMUM_BACKOFF": 3600,
            "DAYS_TO_KEEP_DATA": 14,
        }
    )
    assert translated == {
        "STOMP_HOSTS": [("mq", 61614)],
        "STOMP_USERNAME": "user",
        "STOMP_PASSCODE": "secret",
        "STOMP_VHOST": "orders",
        "STOMP_HEARTBEATS": (5000, 5000),
        "STOMP_USE_SSL": True,
        "STOMP_SSL_KEY_FILE": "/k.pem",
        "STOMP_SSL_CERT_FILE": "/c.pem",
        "STOMP_SSL_CA_CERTS": "/ca.pem",
        "STOMP_SSL_PASSWORD": "pw",
        "POLL_INTERVAL": 0.5,  # django-outbox-pattern's int() made this 0, a busy loop
        "MAX_ATTEMPTS": 50,
        "RECONNECT_BACKOFF_MAX": 3600,
        "DAYS_TO_KEEP_DATA": 14,
    }


def test_queue_headers_split_prefetch_and_take_exclusive():
    translated = translate(
        {
            "DEFAULT_STOMP_QUEUE_HEADERS": {
                "durable": "true",
                "auto-delete": False,
                "prefetch-count": "10",
            },
            "DEFAULT_EXCLUSIVE_QUEUE": False,
        }
    )
    assert translated == {
        "CONSUMER_PREFETCH": 10,
        "CONSUMER_QUEUE_HEADERS": {"durable": "true", "auto-delete": "false", "exclusive": "false"},
    }


def test_ignored_keys_are_logged_and_dropped(caplog):
    with caplog.at_level(logging.INFO, logger="pgoutbox.compat"):
        translated = translate({"DEFAULT_PUBLISHED_CHUNK_SIZE": 200, "DEFAULT_WAIT_RETRY": 60})
    assert translated == {}
    assert "'DEFAULT_PUBLISHED_CHUNK_SIZE'] is ignored" in caplog.text
    assert "'DEFAULT_WAIT_RETRY'] is ignored" in caplog.text


def test_class_paths_at_their_default_are_accepted():
    assert (
        translate(
            {
                "DEFAULT_CONNECTION_CLASS": "stomp.StompConnection12",
                "DEFAULT_PUBLISHED_CLASS": "django_outbox_pattern.models.Published",
                "DEFAULT_STOMP_CERT_VALIDATOR": None,
            }
        )
        == {}
    )


@pytest.mark.parametrize(
    "key",
    [
        "DEFAULT_CONNECTION_CLASS",
        "DEFAULT_CONSUMER_LISTENER_CLASS",
        "DEFAULT_GENERATE_HEADERS",
        "DEFAULT_PUBLISHED_CLASS",
        "DEFAULT_RECEIVED_CLASS",
        "DEFAULT_STOMP_CERT_VALIDATOR",
    ],
)
def test_custom_class_paths_are_refused_naming_the_key(key):
    with pytest.raises(ImproperlyConfigured, match=f"'{key}'"):
        translate({key: "myapp.custom.Thing"})


def test_unknown_key_is_refused_with_a_hint():
    with pytest.raises(ImproperlyConfigured, match="did you mean 'DEFAULT_STOMP_VHOST'"):
        translate({"DEFAULT_STOMP_VHOTS": "/"})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"DEFAULT_PRODUCER_WAITING_TIME": 0}, r"'DEFAULT_PRODUCER_WAITING_TIME'.*POLL_INTERVAL"),
        (
            {"DEFAULT_STOMP_QUEUE_HEADERS": {"prefetch-count": "many"}},
            "'DEFAULT_STOMP_QUEUE_HEADERS'",
        ),
        ({"DEFAULT_EXCLUSIVE_QUEUE": "no"}, "'DEFAULT_EXCLUSIVE_QUEUE'"),
        ({"DEFAULT_STOMP_PASSCODE": 7}, r"'DEFAULT_STOMP_PASSCODE'.*\(value hidden\)"),
    ],
)
def test_bad_value_names_both_keys(raw, message):
    with (
        override_settings(DJANGO_OUTBOX_PATTERN=raw),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        get_settings()


def test_get_settings_reads_the_dict_and_pgoutbox_wins_key_by_key():
    with override_settings(
        DJANGO_OUTBOX_PATTERN={
            "DEFAULT_STOMP_VHOST": "legacy",
            "DEFAULT_STOMP_USERNAME": "legacy-user",
            "DEFAULT_STOMP_QUEUE_HEADERS": {"durable": "true", "prefetch-count": "5"},
        },
        PGOUTBOX={"STOMP_USERNAME": "new-user"},
    ):
        settings = get_settings()
        assert settings.stomp_vhost == "legacy"
        assert settings.stomp_username == "new-user"
        assert settings.consumer_prefetch == 5
        assert settings.consumer_queue_headers == (("durable", "true"),)
    assert get_settings().stomp_vhost == "/"  # override_settings is undone


def test_get_settings_refuses_a_bad_legacy_dict():
    with (
        override_settings(DJANGO_OUTBOX_PATTERN={"DEFAULT_GENERATE_HEADERS": "my.headers"}),
        pytest.raises(ImproperlyConfigured, match="DEFAULT_GENERATE_HEADERS"),
    ):
        get_settings()
