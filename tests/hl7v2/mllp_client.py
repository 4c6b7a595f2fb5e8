"""A plain-socket MLLP sender for tests, independent of the listener's own framing code."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence

import hl7

START, END = b"\x0b", b"\x1c\x0d"


def read_ack(sock: socket.socket) -> bytes:
    data = b""
    while END not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    return data[data.index(START) + 1 : data.index(END)]


def send_raw(port: int, payload: bytes, timeout: float = 30) -> bytes:
    """Send bytes as they are (framing included) and read one ACK."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        return read_ack(sock)


def sender_of(message: str) -> str:
    msh = message.split("\r", 1)[0]
    fields = msh.split(msh[3])
    return f"{fields[2]}|{fields[3]}"


def send_all(port: int, messages: Sequence[str], connections: int = 4, timeout: float = 60) -> list[str]:
    """Send messages over `connections` concurrent connections, each sender's messages on one
    connection in their order (as a sending system does); returns the ACKs in message order."""
    acks: list[str | None] = [None] * len(messages)
    errors: list[BaseException] = []
    senders = list(dict.fromkeys(sender_of(message) for message in messages))
    lanes = [senders.index(sender_of(message)) % connections for message in messages]

    def run(lane: int) -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
                for index in (i for i, assigned in enumerate(lanes) if assigned == lane):
                    sock.sendall(START + messages[index].encode("utf-8") + END)
                    acks[index] = read_ack(sock).decode("utf-8")
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=run, args=(lane,)) for lane in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    return [ack or "" for ack in acks]


def acknowledgement(ack: str) -> tuple[str, str, list[str]]:
    """(MSA-1 code, MSA-2 control id, ERR-8 texts) of an ACK, read with python-hl7."""
    message = hl7.parse(ack)
    msa = message.segment("MSA")
    errors = [message.unescape(str(segment[8])) for segment in message if str(segment[0]) == "ERR" and len(segment) > 8]
    return str(msa[1]), str(msa[2]), errors
