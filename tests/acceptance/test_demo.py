"""The README's first command: the demo on an embedded PostgreSQL, no services."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.relay_runner import ROOT


@pytest.mark.skipif(
    sys.version_info >= (3, 13), reason="pgserver has no wheel for Python 3.13 (demo: <= 3.12)"
)
def test_demo_delivers_every_committed_event_and_no_rolled_back_one():
    result = subprocess.run(
        [sys.executable, "-m", "pgoutbox.demo", "--events", "200", "--rollbacks", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "committed 200 events, rolled back 20" in result.stdout
    assert "delivered 200: 200 committed, 0 rolled back" in result.stdout
    assert "missing 0, duplicated 0" in result.stdout
    assert "commit -> publish latency: p50" in result.stdout
