"""STOMP transport pieces that need no broker."""

from __future__ import annotations

import socket

import stomp

from pgoutbox.transports.stomp import send_frame, set_nodelay


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


def test_send_frame_is_stomp_1_2_with_escaped_headers_and_a_content_length():
    frame = send_frame("/queue/a:b", {"x:k": "v\\1\n2\r"}, b"{}\x00x")
    assert frame == (
        b"SEND\ndestination:/queue/a\\cb\ncontent-length:4\nx\\ck:v\\\\1\\n2\\r\n\n{}\x00x\x00"
    )
