"""jaiminho's side: a function decorated with ``@save_to_outbox`` that sends one message with
stomp.py, as jaiminho's README has users write them. Like pgoutbox, it asks for a receipt (the
broker's confirm), sends ``persistent: true`` and turns Nagle's algorithm off, so both deliver
the same guarantee to the broker."""

from __future__ import annotations

import json
import socket
from typing import Any

import stomp
from jaiminho.send import save_to_outbox

from benchmarks.peer_app.settings import STOMP
from benchmarks.receipts import Receipts

_conn: Any = None
_receipts = Receipts()
_ids = iter(range(1 << 62))


def _connection() -> Any:
    global _conn
    if _conn is None or not _conn.is_connected():
        conn = stomp.StompConnection12([STOMP], vhost="/", auto_decode=False, heartbeats=(0, 0))
        conn.set_listener("receipts", _receipts)
        conn.connect("guest", "guest", wait=True)
        conn.transport.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _conn = conn
    return _conn


@save_to_outbox
def publish(destination: str, body: dict[str, Any]) -> None:
    receipt = f"r{next(_ids)}"
    headers = {"content-type": "application/json", "persistent": "true", "receipt": receipt}
    _connection().send(destination, json.dumps(body).encode(), headers=headers)
    with _receipts.changed:
        if not _receipts.changed.wait_for(lambda: receipt in _receipts.seen, 10):
            raise TimeoutError("no STOMP receipt")
        _receipts.seen.discard(receipt)
