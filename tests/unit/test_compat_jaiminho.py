"""JAIMINHO_CONFIG translated into PGOUTBOX keys; the function-event policies that need no I/O."""

from __future__ import annotations

import datetime
import json
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.test import override_settings

from pgoutbox import registry
from pgoutbox.compat.jaiminho import translate
from pgoutbox.conf import get_settings, parse_settings
from pgoutbox.errors import SerializationError
from pgoutbox.producer.functions import encode_call, save_to_outbox_stream
from pgoutbox.relay.ordering import head_failure
from pgoutbox.signals import get_event_payload


class Encoder(json.JSONEncoder):
    def default(self, o: object) -> object:
        if isinstance(o, set):
            return sorted(o)
        return super().default(o)


def capture(exc: BaseException) -> None:
    pass


def test_every_documented_key_is_translated():
    raw = {
        "PUBLISH_STRATEGY": "keep-order",
        "PERSIST_ALL_EVENTS": False,
        "DELETE_AFTER_SEND": True,
        "TIME_TO_DELETE": datetime.timedelta(days=2),
        "DEFAULT_ENCODER": Encoder,
        "DEFAULT_CAPTURE_EXCEPTION": capture,
        "SIGN_EVENTS": True,
        "VERIFY_EVENTS_SIGNATURE": True,
        "NON_RETRYABLE_EXCEPTIONS": (KeyError,),
    }
    assert translate(raw) == {
        "PUBLISH_STRATEGY": "keep-order",
        "DELETE_AFTER_SEND": True,
        "TIME_TO_DELETE": datetime.timedelta(days=2),
        "DEFAULT_ENCODER": Encoder,
        "CAPTURE_EXCEPTION": capture,
        "NON_RETRYABLE_EXCEPTIONS": (KeyError,),
    }


def test_jaiminho_defaults_apply_where_they_differ():
    # jaiminho keeps sent rows (for event_cleaner) unless DELETE_AFTER_SEND is set.
    assert translate({}) == {"DELETE_AFTER_SEND": False}
    assert translate({"PERSIST_ALL_EVENTS": True, "SIGN_EVENTS": False}) == {
        "DELETE_AFTER_SEND": False
    }


def test_unknown_key_is_refused_with_a_hint():
    with pytest.raises(ImproperlyConfigured, match=r"'PUBLISH_STRATEGYY'.*'PUBLISH_STRATEGY'"):
        translate({"PUBLISH_STRATEGYY": "keep-order"})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"PUBLISH_STRATEGY": "fire-and-forget"}, r"JAIMINHO_CONFIG\['PUBLISH_STRATEGY'\]"),
        ({"TIME_TO_DELETE": 7}, r"TIME_TO_DELETE.*timedelta"),
        ({"DEFAULT_ENCODER": dict}, r"\['DEFAULT_ENCODER'\].*JSONEncoder"),
        (["PUBLISH_STRATEGY"], "must be a dict"),
    ],
)
def test_bad_values_name_both_keys(raw, message):
    with override_settings(JAIMINHO_CONFIG=raw), pytest.raises(ImproperlyConfigured, match=message):
        get_settings()


def test_translation_is_pure_and_leaves_values_to_pgoutbox_conf():
    assert translate({"PUBLISH_STRATEGY": "fire-and-forget"})["PUBLISH_STRATEGY"] == (
        "fire-and-forget"
    )


def test_jaiminho_config_feeds_the_settings_and_pgoutbox_wins():
    jaiminho = {"PUBLISH_STRATEGY": "keep-order", "TIME_TO_DELETE": datetime.timedelta(days=1)}
    with override_settings(
        JAIMINHO_CONFIG=jaiminho, PGOUTBOX={"TIME_TO_DELETE": datetime.timedelta(hours=1)}
    ):
        settings = get_settings()
        assert settings.publish_strategy == "keep-order"
        assert settings.delete_after_send is False
        assert settings.time_to_delete == datetime.timedelta(hours=1)
    assert get_settings().publish_strategy == "publish-on-commit"
    assert get_settings().delete_after_send is True


def test_function_event_settings_defaults_and_validation():
    settings = parse_settings({})
    assert settings.publish_strategy == "publish-on-commit"
    assert settings.default_encoder is DjangoJSONEncoder
    assert settings.time_to_delete == datetime.timedelta(days=7)
    assert settings.keep_order_poison_policy == "block"
    parsed = parse_settings(
        {
            "DEFAULT_ENCODER": "tests.unit.test_compat_jaiminho.Encoder",
            "NON_RETRYABLE_EXCEPTIONS": ["builtins.KeyError"],
            "CAPTURE_EXCEPTION": "tests.unit.test_compat_jaiminho.capture",
        }
    )
    assert parsed.default_encoder is Encoder
    assert parsed.non_retryable_exceptions == (KeyError,)
    assert parsed.capture_exception is capture
    for key, value in [
        ("KEEP_ORDER_POISON_POLICY", "skip"),
        ("FUNCTION_MODULES", "tests.app.outbox"),
        ("NON_RETRYABLE_EXCEPTIONS", [int]),
        ("PUBLISH_ON_COMMIT_LEASE", 0),
        ("CAPTURE_EXCEPTION", 3),
    ]:
        with pytest.raises(ImproperlyConfigured, match=key):
            parse_settings({key: value})


def test_call_arguments_are_encoded_with_the_given_encoder():
    assert json.loads(encode_call((1, {2}), {"k": {3}}, Encoder)) == {
        "args": [1, [2]],
        "kwargs": {"k": [3]},
    }
    with pytest.raises(TypeError) as excinfo:
        encode_call((object(),), {}, DjangoJSONEncoder)
    assert isinstance(excinfo.value, SerializationError)


def test_registry_lookup_never_imports():
    assert "tests.app.outbox.notify" in registry.registered()  # autodiscovered at start-up
    assert registry.lookup("tests.app.never_imported.run") is None
    assert "tests.app.never_imported" not in sys.modules


def test_decorated_function_keeps_jaiminho_shape():
    from tests.app import outbox

    assert outbox.notify.__name__ == "notify"
    assert registry.lookup("tests.app.outbox.notify") is outbox.notify.original_func
    with pytest.raises(ValueError, match="overwrite_strategy_with"):
        save_to_outbox_stream("s", "keep-disorder")


def test_event_payload_is_the_first_positional_argument():
    assert get_event_payload(({"a": 1}, 2)) == {"a": 1}
    assert get_event_payload(()) == {}
    assert get_event_payload([1]) == {}


@pytest.mark.parametrize(
    ("policy", "attempts", "final", "dead", "goes_on"),
    [
        ("block", 99, True, False, False),  # a blocked head never dies, even when invalid
        ("dead-letter-and-continue", 2, False, False, False),  # still has attempts left
        ("dead-letter-and-continue", 3, False, True, True),  # its last attempt: stream goes on
    ],
)
def test_keep_order_policy_for_a_failing_head(policy, attempts, final, dead, goes_on):
    failure, moves_on = head_failure(
        1, "e", attempts=attempts, delay=1.0, final=final, policy=policy, max_attempts=3
    )
    assert (failure.dead, moves_on) == (dead, goes_on)
    _, goes_on = head_failure(
        1, "e", attempts=1, delay=1.0, final=True, policy="dead-letter-and-continue", max_attempts=3
    )
    assert goes_on
