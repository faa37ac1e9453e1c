"""STOMP transport on stomp.py: pipelined SENDs, each with a receipt, confirmed per message.

RabbitMQ's STOMP adapter answers a SEND's receipt only after the broker's publisher confirm,
so a receipt means the broker owns the message (on disk, for persistent messages). stomp.py
leaves Nagle's algorithm on, which holds a receipt-bearing frame back for tens of
milliseconds; the socket gets ``TCP_NODELAY`` as soon as it is connected.
"""

from __future__ import annotations

import itertools
import logging
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import stomp
import stomp.exception

from pgoutbox.conf import Settings
from pgoutbox.errors import TransportUnavailable
from pgoutbox.transports.base import MESSAGE_ID_HEADER, Message, PublishOutcome

logger = logging.getLogger(__name__)

# How long to wait, after an ERROR frame, for the broker to close the connection.
_ERROR_GRACE_SECONDS = 1.0

# The rest of a passcode header, whatever it holds, up to the end of its frame line (a real
# newline, or an escaped one in the repr of the frame's bytes).
_PASSCODE = re.compile(r"(passcode:).*?(?=\\n|\n|$)")


class _RedactPasscode(logging.Filter):
    """stomp.py logs every frame it sends at DEBUG, CONNECT included; its own mask expects a
    space after ``passcode:``, which the frame does not have, so the passcode would be logged
    in clear. This filter on its logger hides it: every passcode a transport was configured
    with, in each form a log line may show it (plain, STOMP-escaped, in a bytes repr), and
    then the rest of any ``passcode:`` header line."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def remember(self, passcode: str) -> None:
        escaped = (
            passcode.replace("\\", "\\\\")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
            .replace(":", "\\c")
        )
        for form in (passcode, escaped):
            self.secrets.update({form, repr(form.encode())[2:-1], repr(form)[1:-1]})
        self.secrets.discard("")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = message
        for secret in sorted(self.secrets, key=len, reverse=True):
            hidden = hidden.replace(secret, "********")
        if "passcode" in hidden:
            hidden = _PASSCODE.sub(r"\1********", hidden)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


_redact = _RedactPasscode()
logging.getLogger("stomp.py").addFilter(_redact)


class ConnectionState(stomp.ConnectionListener):  # type: ignore[misc]
    """CONNECTED, RECEIPT and disconnection as seen by stomp.py's receiver thread; wait on
    :attr:`changed` for them."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.connected = False
        self.disconnected = False
        self.receipts: set[str] = set()
        # Receipts a publisher waits for all of: it is woken once, by the last one, not by
        # each of a batch's (a wake-up and a scan of the batch per receipt before).
        self.awaited: set[str] = set()

    def on_connected(self, frame: Any) -> None:
        with self.changed:
            self.connected = True
            self.changed.notify_all()

    def on_receipt(self, frame: Any) -> None:
        with self.changed:
            receipt_id = frame.headers.get("receipt-id", "")
            self.receipts.add(receipt_id)
            self.awaited.discard(receipt_id)
            if not self.awaited:
                self.changed.notify_all()

    def on_disconnected(self) -> None:
        with self.changed:
            self.disconnected = True
            self.changed.notify_all()


class _FrameTracker(ConnectionState):
    """A publishing connection's state, plus every ERROR frame by the receipt it names."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, str] = {}  # receipt id ("" when the broker named none) -> reason

    def on_error(self, frame: Any) -> None:
        body = (
            frame.body.decode("utf-8", "replace") if isinstance(frame.body, bytes) else frame.body
        )
        parts = dict.fromkeys(p.strip() for p in (frame.headers.get("message", ""), body))
        reason = " ".join(part for part in parts if part) or "broker sent ERROR"
        receipt_id = frame.headers.get("receipt-id", "")
        with self.changed:
            # RabbitMQ may send several ERRORs without a receipt id for one batch ("Processing
            # error" for the frames after a bad one, then the reason): keep them all.
            previous = self.errors.get(receipt_id)
            if previous is not None:
                reason = previous if reason in previous.split("; ") else f"{previous}; {reason}"
            self.errors[receipt_id] = reason
            self.changed.notify_all()


def new_connection(settings: Settings) -> stomp.StompConnection12:
    """Return an unconnected stomp.py connection configured from the settings (hosts, vhost,
    heartbeats, TLS); bodies stay bytes (``auto_decode=False``)."""
    _redact.remember(settings.stomp_passcode)
    conn = stomp.StompConnection12(
        host_and_ports=list(settings.stomp_hosts),
        heartbeats=settings.stomp_heartbeats,
        vhost=settings.stomp_vhost,
        timeout=settings.stomp_connect_timeout,
        reconnect_attempts_max=1,
        auto_decode=False,
    )
    if settings.stomp_use_ssl:
        conn.set_ssl(
            for_hosts=list(settings.stomp_hosts),
            key_file=settings.stomp_ssl_key_file,
            cert_file=settings.stomp_ssl_cert_file,
            ca_certs=settings.stomp_ssl_ca_certs,
            password=settings.stomp_ssl_password,
        )
    return conn


def set_nodelay(conn: stomp.StompConnection12) -> None:
    """Turn Nagle's algorithm off on a connected stomp.py connection (see the module doc)."""
    sock = getattr(conn.transport, "socket", None)
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        # The broker (or a proxy) closed the socket right after accepting it; the wait for
        # CONNECTED that follows reports that as TransportUnavailable.
        logger.debug("STOMP socket closed before TCP_NODELAY could be set", exc_info=True)


def start_connection(conn: stomp.StompConnection12, settings: Settings) -> None:
    """Open the socket and send CONNECT (the caller waits for CONNECTED); raise
    ``TransportUnavailable`` when the broker cannot be reached."""
    try:
        conn.connect(settings.stomp_username, settings.stomp_passcode, wait=False)
    except (stomp.exception.StompException, OSError) as exc:
        raise TransportUnavailable(f"cannot connect to the STOMP broker: {exc!r}") from exc
    set_nodelay(conn)


def close_connection(conn: stomp.StompConnection12) -> None:
    """Say DISCONNECT if still connected and stop stomp.py's threads; never raises."""
    try:
        conn.disconnect()
    except Exception:  # already gone: nothing to tell the broker
        logger.debug("STOMP disconnect failed", exc_info=True)
    try:
        conn.transport.stop()
    except Exception:
        logger.debug("STOMP transport stop failed", exc_info=True)


# STOMP 1.2 header escaping (backslash first is implied: translate maps each character once).
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", ":": "\\c"})


def _escape(text: str) -> str:
    """``text`` escaped for a STOMP 1.2 header; most have nothing to escape, and four
    substring tests cost less than a translation character by character."""
    if "\\" in text or ":" in text or "\n" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


def send_frame(destination: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """Encode a STOMP 1.2 SEND frame: ``destination`` and ``content-length`` first (a header
    repeated later is ignored by the broker, as the spec says), every header escaped."""
    parts = ["SEND\ndestination:", _escape(destination), "\ncontent-length:", str(len(body)), "\n"]
    for key, value in headers.items():
        parts += (_escape(key), ":", _escape(value if type(value) is str else str(value)), "\n")
    parts.append("\n")
    return "".join(parts).encode() + body + b"\0"


# Frames per write: the broker starts on a batch's first frames while the rest are encoded.
_FRAMES_PER_WRITE = 64


def write_frames(
    conn: stomp.StompConnection12, frames: Iterable[tuple[str, dict[str, str], bytes]]
) -> None:
    """Send ``(destination, headers, body)`` frames. On a plain socket, ``_FRAMES_PER_WRITE``
    at a time: one ``sendall`` for many messages instead of one each, each of which also took
    a lock, called every listener and built the frame from a list of lines (a third of a
    backlog drain's CPU). A TLS socket is written by stomp.py's own thread, so it keeps
    stomp.py's ``send``."""
    transport = conn.transport
    if getattr(transport, "blocking", False) and transport.socket is not None:
        chunk: list[bytes] = []
        for frame in frames:
            chunk.append(send_frame(*frame))
            if len(chunk) == _FRAMES_PER_WRITE:
                transport.send(b"".join(chunk))
                chunk = []
        if chunk:
            transport.send(b"".join(chunk))
        return
    for destination, headers, body in frames:
        conn.send(destination, body, headers=headers)


class StompTransport:
    """Publishes to a STOMP broker (RabbitMQ) with a receipt on every message."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._conn: stomp.StompConnection12 | None = None
        self._tracker = _FrameTracker()
        self._receipt_ids = itertools.count()

    def __repr__(self) -> str:
        settings = self._settings
        hosts = ", ".join(f"{host}:{port}" for host, port in settings.stomp_hosts)
        return f"<StompTransport {settings.stomp_username}@{hosts} vhost={settings.stomp_vhost!r}>"

    def open(self) -> None:
        if self._conn is not None and self._conn.is_connected() and not self._tracker.disconnected:
            return
        self.close()
        settings = self._settings
        conn = new_connection(settings)
        tracker = _FrameTracker()
        conn.set_listener("pgoutbox", tracker)
        start_connection(conn, settings)
        with tracker.changed:
            tracker.changed.wait_for(
                lambda: tracker.connected or tracker.errors or tracker.disconnected,
                settings.stomp_connect_timeout,
            )
        if not tracker.connected:
            reason = "; ".join(tracker.errors.values()) or "no CONNECTED frame in time"
            self._conn, self._tracker = conn, tracker
            self.close()
            raise TransportUnavailable(f"STOMP broker refused the connection: {reason}")
        self._conn, self._tracker = conn, tracker
        logger.info("connected to STOMP broker", extra={"transport": repr(self)})

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            close_connection(conn)

    def publish_batch(self, messages: Sequence[Message]) -> PublishOutcome:
        self.open()
        assert self._conn is not None
        conn, tracker = self._conn, self._tracker
        failure: str | None = None
        # Only "persistent: true" is sent: RabbitMQ reads "persistent: false" on a SEND to
        # /queue/<name> as "declare it transient", i.e. exclusive to this connection, and then
        # refuses the SEND (RESOURCE_LOCKED) when consumers already use the durable queue.
        # Without the header, messages are transient all the same.
        persistent = {"persistent": "true"} if self._settings.stomp_persistent else {}
        # Every receipt is awaited before the first frame goes out: one arriving before it
        # was awaited would never be counted.
        receipts = {f"r{next(self._receipt_ids)}": message.event_id for message in messages}
        with tracker.changed:
            tracker.awaited = set(receipts)
        frames = (
            (message.destination, self._headers(message, receipt, persistent), message.body)
            for receipt, message in zip(receipts, messages, strict=True)
        )
        try:
            write_frames(conn, frames)
        except (stomp.exception.StompException, OSError) as exc:
            failure = f"STOMP send failed: {exc!r}"
            receipts.clear()  # what reached the broker is unknown: nothing is confirmed
            with tracker.changed:
                tracker.awaited = set()

        deadline = time.monotonic() + self._settings.stomp_receipt_timeout
        with tracker.changed:
            tracker.changed.wait_for(
                lambda: tracker.disconnected or bool(tracker.errors) or not tracker.awaited,
                max(0.0, deadline - time.monotonic()),
            )
            if tracker.errors and not tracker.disconnected:
                # The broker closes the connection after its ERRORs: collect every one of them
                # before blaming a message, or the one naming the bad destination is missed.
                tracker.changed.wait_for(
                    lambda: tracker.disconnected,
                    min(_ERROR_GRACE_SECONDS, max(0.0, deadline - time.monotonic())),
                )
            confirmed = {event for r, event in receipts.items() if r in tracker.receipts}
            errors = dict(tracker.errors)
            tracker.receipts.difference_update(receipts)
            tracker.awaited = set()
            disconnected = tracker.disconnected

        rejected = {receipts[r]: reason for r, reason in errors.items() if r in receipts}
        if errors or disconnected:
            # RabbitMQ closes the connection after an ERROR frame: reconnect on the next batch.
            unnamed = "; ".join(reason for r, reason in errors.items() if r not in receipts)
            if unnamed:
                waiting = [m for m in messages if m.event_id not in confirmed | rejected.keys()]
                rejected.update(dict.fromkeys(blame_error(unnamed, waiting), unnamed))
            failure = failure or unnamed or "connection to the STOMP broker lost"
            self.close()
        unconfirmed = frozenset(m.event_id for m in messages) - confirmed - rejected.keys()
        if unconfirmed and failure is None:
            failure = f"no receipt within {self._settings.stomp_receipt_timeout:g}s"
            self.close()
        return PublishOutcome(
            confirmed=frozenset(confirmed),
            rejected=rejected,
            unconfirmed=unconfirmed,
            failure=failure if unconfirmed else None,
        )

    @staticmethod
    def _headers(message: Message, receipt: str, persistent: dict[str, str]) -> dict[str, str]:
        message_id = str(message.message_id)
        return {
            **message.headers,
            MESSAGE_ID_HEADER: message_id,
            "amqp-message-id": message_id,
            **persistent,
            "receipt": receipt,
        }


_QUOTED = re.compile(r"'([^']+)'")


def blame_error(reason: str, waiting: Sequence[Message]) -> list[int]:
    """Return the event ids an ERROR frame without a receipt id is about.

    RabbitMQ names the missing exchange or queue in quotes ("no exchange 'x' in vhost '/'"):
    every waiting message whose destination has that name as a path segment is to blame. When
    no destination matches, the first waiting message in send order is: the broker handles
    frames in order, so the earliest unconfirmed one is the likeliest cause. Blaming only
    delays a message (backoff) and counts one attempt; it never drops it.
    """
    names = set(_QUOTED.findall(reason)) - {"/"}
    named = [m.event_id for m in waiting if names & set(m.destination.split("/"))]
    if named:
        return named
    return [waiting[0].event_id] if waiting else []
