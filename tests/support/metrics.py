"""Scrape a Prometheus endpoint the way Prometheus does: over HTTP, parsing the text format."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int) -> dict[str, float]:
    """Every sample of ``/metrics``: ``name{label="v"}`` → value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def wait_for_endpoint(process: subprocess.Popen[bytes], log: Path, port: int) -> None:
    """Wait until a command started with ``--metrics-port`` logs that it serves ``port``;
    fail with its log if it exits first or takes more than 20 s."""
    deadline = time.monotonic() + 20
    while f"metrics on port {port}" not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
