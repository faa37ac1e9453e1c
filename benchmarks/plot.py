"""PNG next to each result JSON: latency CDF per mode, commits/s per client count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.infra import RESULTS

QUANTILES = [*range(100), 99.5, 99.9, 100]


def plot_file(path: Path) -> Path:
    """Draw ``<result>.png`` for one result JSON and return its path."""
    document = json.loads(path.read_text())
    out = path.with_suffix(".png")
    if document["command"] == "write_overhead":
        _plot_write_overhead(document, out)
    else:
        _plot_cdf(document, out)
    return out


def plot_latest(key: str | None = None) -> list[Path]:
    paths = sorted(RESULTS.glob(f"{key}-2*.json" if key else "*.json"))
    return [plot_file(p) for p in paths if _drawable(json.loads(p.read_text()))]


def _drawable(document: dict[str, Any]) -> bool:
    """Latency distributions and write throughput have a picture; tables of figures do not."""
    if document.get("command") == "write_overhead":
        return True
    return any(r.get("cdf_ms") for r in document.get("results", []) if isinstance(r, dict))


def _plot_cdf(document: dict[str, Any], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    for result in document["results"]:
        cdf = result.get("cdf_ms")
        if not cdf:
            continue
        ax.plot([max(v, 0.01) for v in cdf], [q / 100 for q in QUANTILES], label=result["label"])
    ax.set_xscale("log")
    ax.set_xlabel("commit → consumer latency (ms, log scale)")
    ax.set_ylabel("fraction of events")
    ax.set_title(f"pgoutbox {document['command']}: latency CDF")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def _plot_write_overhead(document: dict[str, Any], out: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    by_mode: dict[str, list[dict[str, Any]]] = {}
    for row in document["results"]:
        by_mode.setdefault(row["mode"], []).append(row)
    for mode, rows in by_mode.items():
        rows.sort(key=lambda r: r["clients"])
        clients = [r["clients"] for r in rows]
        left.plot(clients, [r["commits_per_s"] for r in rows], marker="o", label=mode)
        right.plot(clients, [r["p99_ms"] or 0 for r in rows], marker="o", label=mode)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    left.set_ylabel("commits/s (one-row INSERT per transaction)")
    left.set_title("write throughput per NOTIFY mode")
    right.set_yscale("log")
    right.set_ylabel("p99 insert → consumer latency (ms, log)")
    right.set_title("delivery latency each mode costs")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
