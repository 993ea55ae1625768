"""Reading one HTTP/1.1 response off a raw socket, for tests that send requests no HTTP client would (broken
framing, bodies the server refuses part-way). Standard library only: both test environments import it."""

from __future__ import annotations

import socket


def read_response(conn: socket.socket) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 response read from `conn`, by its Content-Length (the server may keep the
    connection open to drain a body it refused)."""
    raw = b""
    while b"\r\n\r\n" not in raw and (chunk := conn.recv(65536)):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length"), 0
    )
    while len(body) < length and (chunk := conn.recv(65536)):
        body += chunk
    return int(lines[0].split(" ")[1]), body
