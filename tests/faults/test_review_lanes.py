"""The calls lane in relay processes: a call that takes its process down, Ctrl-C during a
call of ``events_relay``."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from pgoutbox.models import OutboxEvent
from pgoutbox.producer import functions
from tests.support import review_calls
from tests.support.function_events import pgoutbox_settings, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MODULES = {"FUNCTION_MODULES": ["tests.support.review_calls"]}


def _runs(path: Path, name: str) -> int:
    return path.read_text().split().count(name) if path.exists() else 0


def test_a_call_that_takes_its_process_down_goes_dead_after_max_attempts(
    relay_process, tmp_path, monkeypatch
):
    """Each lease counted an attempt, but nothing ever compared the count with MAX_ATTEMPTS:
    a call that kills its relay (OOM, segfault) was run again by every restart, for ever."""
    monkeypatch.setattr(functions, "_run_after_commit_enabled", False)  # the producer died
    runs = tmp_path / "runs"
    overrides = {**MODULES, "MAX_ATTEMPTS": 2, "CALL_LEASE": 0.3, "PUBLISH_ON_COMMIT_LEASE": 0.05}
    with pgoutbox_settings(PUBLISH_ON_COMMIT_LEASE=0.05):
        review_calls.takes_the_process_down("poison")
    time.sleep(0.1)
    for _ in range(4):  # a supervisor restarting the listener
        listener = relay_process(
            "outbox_listen", overrides=overrides, PGOUTBOX_REVIEW_RUNS=str(runs)
        )
        try:
            listener.popen.wait(6)
        except Exception:
            listener.stop()  # still running: it did not run the call this time
        time.sleep(0.4)  # the lease of the crashed run runs out
    row = OutboxEvent.objects.get()
    assert _runs(runs, "takes_the_process_down") == 2
    assert row.status == "dead"
    assert row.last_error


def _events_relay_interrupted_in_a_call(relay_process: Any, runs: Path) -> Any:
    """Start ``events_relay`` once the publish-on-commit leases ran out, and SIGINT it while
    its first call runs."""
    time.sleep(0.1)
    relay = relay_process(
        "events_relay",
        overrides={**MODULES, "PUBLISH_ON_COMMIT_LEASE": 0.05},
        PGOUTBOX_REVIEW_RUNS=str(runs),
    )
    wait_until(lambda: _runs(runs, "slow") == 1, timeout=15)
    relay.popen.send_signal(signal.SIGINT)
    return relay


def test_ctrl_c_stops_events_relay_after_the_call_in_flight(relay_process, tmp_path, monkeypatch):
    """events_relay (cron form) installed no signal handler: Ctrl-C's KeyboardInterrupt landed
    in the user's function, was recorded as that call's failure, and the command went on with
    every other due call (8 s more here). Like outbox_listen, it now finishes the call in
    flight and stops."""
    monkeypatch.setattr(functions, "_run_after_commit_enabled", False)
    runs = tmp_path / "runs"
    with pgoutbox_settings(PUBLISH_ON_COMMIT_LEASE=0.05):
        for _ in range(3):
            review_calls.slow(4.0)
    relay = _events_relay_interrupted_in_a_call(relay_process, runs)
    started = time.monotonic()
    code = relay.popen.wait(20)
    assert time.monotonic() - started < 6.0, "it went on running the other calls"
    assert (_runs(runs, "slow"), code) == (1, 0)
    # The call in flight finished; the two others are due again, untried, for the next run.
    left = list(OutboxEvent.objects.values_list("status", "attempts", "last_error"))
    assert left == [("pending", 0, None)] * 2
    assert OutboxEvent.objects.filter(available_at__lte=timezone.now()).count() == 2


def test_sigterm_during_a_hung_call_exits_and_hands_back_the_calls_leased_with_it(
    relay_process, tmp_path, monkeypatch
):
    """outbox_listen exits 0 about 10 s after SIGTERM (the hung call's thread is left behind)
    and the hung call is run again after its lease. The calls leased in the same batch but
    never started were left leased too: an attempt counted and CALL_LEASE to wait."""
    monkeypatch.setattr(functions, "_run_after_commit_enabled", False)
    runs = tmp_path / "runs"
    overrides = {**MODULES, "CALL_LEASE": 20.0, "PUBLISH_ON_COMMIT_LEASE": 0.05}
    with pgoutbox_settings(PUBLISH_ON_COMMIT_LEASE=0.05):
        review_calls.slow(60.0)  # hung
        review_calls.slow(0.01)
        review_calls.slow(0.01)
    time.sleep(0.1)
    listener = relay_process("outbox_listen", overrides=overrides, PGOUTBOX_REVIEW_RUNS=str(runs))
    wait_until(lambda: _runs(runs, "slow") == 1, timeout=15)
    listener.popen.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert listener.popen.wait(20) == 0
    assert time.monotonic() - started < 15
    rows = list(OutboxEvent.objects.order_by("id").values_list("attempts", "available_at"))
    assert [attempts for attempts, _ in rows] == [1, 0, 0]
    assert all(due <= timezone.now() for _, due in rows[1:]), "left to wait out CALL_LEASE"


def test_a_second_signal_ends_events_relay_stuck_in_a_hung_call(
    relay_process, tmp_path, monkeypatch
):
    """The cron form waits for the call in flight after a first SIGINT/SIGTERM; a hung call
    must not make the process unkillable but by SIGKILL: a second signal ends it at once (the
    call's lease hands it to the next run)."""
    monkeypatch.setattr(functions, "_run_after_commit_enabled", False)
    runs = tmp_path / "runs"
    with pgoutbox_settings(PUBLISH_ON_COMMIT_LEASE=0.05):
        review_calls.slow(60.0)
    relay = _events_relay_interrupted_in_a_call(relay_process, runs)
    time.sleep(1.0)
    assert relay.popen.poll() is None  # finishing the call in flight
    relay.popen.send_signal(signal.SIGTERM)
    assert relay.popen.wait(5) == -signal.SIGTERM
