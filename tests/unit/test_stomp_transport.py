"""STOMP transport pieces that need no broker."""

from __future__ import annotations

import socket

import stomp

from pgoutbox.transports.stomp import set_nodelay


def test_nodelay_on_a_socket_the_peer_already_closed_does_not_raise():
    # A broker (or proxy) that accepts and at once closes: stomp.py's receiver thread may close
    # the socket before TCP_NODELAY is set; the CONNECTED wait reports it, not an OSError.
    conn = stomp.StompConnection12([("127.0.0.1", 1)])
    closed = socket.socket()
    closed.close()
    conn.transport.socket = closed
    set_nodelay(conn)


def test_nodelay_is_set_on_an_open_socket():
    conn = stomp.StompConnection12([("127.0.0.1", 1)])
    with socket.socket() as sock:
        conn.transport.socket = sock
        set_nodelay(conn)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
