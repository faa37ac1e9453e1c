"""Ordered message streams without I/O: the producer's argument rules, the channel listeners
wake on, and when the ordered lane runs a pass at all."""

from __future__ import annotations

import time

import pytest

from pgoutbox.conf import parse_settings
from pgoutbox.relay.channels import ORDERED_CHANNEL
from pgoutbox.relay.listener import channels_for
from pgoutbox.relay.messages import MessageLane
from pgoutbox.relay.ordered_messages import OrderedMessages
from pgoutbox.transports.memory import MemoryTransport
from pgoutbox.validation import ordered_error


@pytest.mark.parametrize(
    ("ordered", "stream", "error"),
    [
        (False, "", None),
        (True, "order-42", None),
        (True, "", "ordered=True needs a stream"),
        (1, "s", "ordered must be a bool, got int 1"),
        (None, "s", "ordered must be a bool, got NoneType None"),
    ],
)
def test_ordered_needs_a_bool_and_a_stream(ordered, stream, error):
    message = ordered_error(ordered, stream)
    assert message == error if error is None else error in (message or "")


@pytest.mark.parametrize("streams", [(), ("a", "b")])
def test_every_listener_hears_ordered_producers(streams):
    assert ORDERED_CHANNEL in channels_for(streams)


def _lane() -> OrderedMessages:
    lane = MessageLane(
        settings=parse_settings({}), transport=MemoryTransport(), streams=[], batch_size=10
    )
    return OrderedMessages(lane, poll_interval=60.0)


def test_a_pass_runs_only_when_woken_polled_or_due():
    """The lane has no store here: a pass that ran would raise, one that did not returns 0."""
    ordered = _lane()
    with pytest.raises(RuntimeError, match="no store"):
        ordered.drain()  # a new lane is woken: rows committed before it started
    assert ordered.drain() == 0  # not woken, nothing due, polled a moment ago
    ordered.wake()
    with pytest.raises(RuntimeError, match="no store"):
        ordered.drain()
    ordered.due_at = time.monotonic() - 1  # a retry it scheduled
    with pytest.raises(RuntimeError, match="no store"):
        ordered.drain()
    assert ordered.drain() == 0


def test_a_pass_waits_for_the_brokers_retry_time():
    ordered = _lane()
    ordered.lane.retry_at = time.monotonic() + 30
    assert ordered.drain() == 0  # woken, but the broker is being left alone
    assert ordered.due_at == ordered.lane.retry_at
