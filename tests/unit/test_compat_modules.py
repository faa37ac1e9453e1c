"""The replaced libraries' module paths under pgoutbox.compat, and the names that raise."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest

import pgoutbox
from pgoutbox import signals
from pgoutbox.compat.replaced import ReplacedNameError
from pgoutbox.consumer.payload import Payload
from pgoutbox.producer import functions
from tests.support.relay_runner import ROOT


def test_jaiminho_paths_are_pgoutbox_objects():
    from pgoutbox.compat.jaiminho import send
    from pgoutbox.compat.jaiminho import signals as compat_signals

    assert send.save_to_outbox is functions.save_to_outbox
    assert send.save_to_outbox_stream is functions.save_to_outbox_stream
    for name in compat_signals.__all__:
        assert getattr(compat_signals, name) is getattr(signals, name)
    assert len(compat_signals.__all__) == 7  # jaiminho's six signals and get_event_payload


def test_publish_strategy_type_has_jaiminho_members_and_values():
    from pgoutbox.compat.jaiminho.constants import PublishStrategyType
    from pgoutbox.conf import PUBLISH_STRATEGIES

    assert PublishStrategyType.PUBLISH_ON_COMMIT == "publish-on-commit"
    assert PublishStrategyType.KEEP_ORDER == "keep-order"
    assert PublishStrategyType.CHOICES == (
        ("publish-on-commit", "Publish on Commit"),
        ("keep-order", "Keep Order"),
    )
    assert {value for value, _ in PublishStrategyType.CHOICES} == set(PUBLISH_STRATEGIES)
    # Usable where jaiminho users pass it.
    functions.save_to_outbox_stream("s", overwrite_strategy_with=PublishStrategyType.KEEP_ORDER)


def test_outbox_pattern_paths_are_pgoutbox_objects():
    from pgoutbox.compat.outbox_pattern import decorators, factories, payloads

    assert decorators.Config is pgoutbox.Config
    assert decorators.publish is pgoutbox.publish
    assert payloads.Payload is Payload
    assert callable(factories.factory_producer) and callable(factories.factory_consumer)


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("pgoutbox.compat.jaiminho.management.commands.events_relay", "events_relay"),
        ("pgoutbox.compat.jaiminho.management.commands.event_cleaner", "event_cleaner"),
        ("pgoutbox.compat.outbox_pattern.management.commands.publish", "publish"),
        ("pgoutbox.compat.outbox_pattern.management.commands.subscribe", "subscribe"),
    ],
)
def test_command_module_paths_are_pgoutbox_commands(module, command):
    compat = importlib.import_module(module)
    ours = importlib.import_module(f"pgoutbox.management.commands.{command}")
    assert compat.Command is ours.Command


@pytest.mark.parametrize(
    ("module", "name", "advice"),
    [
        ("pgoutbox.compat.jaiminho.models", "Event", "pgoutbox.models.OutboxEvent"),
        ("pgoutbox.compat.outbox_pattern.models", "Received", "Payload.save()"),
    ],
)
def test_names_without_a_counterpart_say_what_to_use(module, name, advice):
    with pytest.raises(ImportError, match=re.escape(advice)) as excinfo:
        exec(f"from {module} import {name}", {})
    assert isinstance(excinfo.value, ReplacedNameError)
    with pytest.raises(AttributeError, match="no attribute 'Other'"):
        getattr(importlib.import_module(module), "Other")  # noqa: B009


def test_old_translation_imports_still_work():
    from pgoutbox.compat.jaiminho import translate as jaiminho_translate
    from pgoutbox.compat.outbox_pattern import translate as outbox_pattern_translate

    assert jaiminho_translate({}) == {"DELETE_AFTER_SEND": False}
    assert outbox_pattern_translate({}) == {}


def test_settings_translation_does_not_import_conf():
    # conf.py imports the translations; they must not import it back (no import cycle).
    code = (
        "import sys, pgoutbox.compat.jaiminho, pgoutbox.compat.outbox_pattern;"
        "assert 'pgoutbox.conf' not in sys.modules, sorted(sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_published_keeps_writing_only_and_says_so():
    from pgoutbox.compat.outbox_pattern.models import Published

    with pytest.raises(TypeError, match=r"got retry, status: .* takes id, destination, body"):
        Published(destination="/queue/x", body={}, status=1, retry=0)
    with pytest.raises(AttributeError, match=r"Published.objects.filter\(\): .*OutboxEvent"):
        Published.objects.filter(destination="/queue/x")


@pytest.mark.parametrize("headers", ["abc", [("a", "b")], 1])
def test_published_headers_not_a_mapping_is_named(headers):
    from pgoutbox.compat.outbox_pattern.models import Published

    with pytest.raises(TypeError, match=r"Published\(\) headers must be a dict"):
        Published(destination="/queue/x", body={}, headers=headers)
