"""MLLP (Minimal Lower Layer Protocol) over asyncio: framing, a server, and a client.

A frame is `0x0B message 0x1C 0x0D`. The server reads frames from many connections at once,
has the handler check each, stores everything that arrived meanwhile in one synchronous handler
call in a thread (a group commit), then answers each in order on its own connection. Bytes
between frames that are only whitespace are ignored; a frame without a start block, or larger
than the limit, is refused with an AR.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

log = logging.getLogger("ficus.hl7v2")

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
LARGE_MESSAGE_BYTES = 64 * 1024  # checked in a thread rather than on the event loop
MAX_BATCH = 500  # messages stored in one transaction at most


def frame(message: bytes) -> bytes:
    return START_BLOCK + message + END_BLOCK


class FrameError(Exception):
    """A frame that breaks MLLP; `content` is what was read of it."""

    def __init__(self, reason: str, content: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.content = content


class FrameReader:
    """Reads MLLP frames from a stream, holding at most `limit` bytes of one message."""

    def __init__(self, reader: asyncio.StreamReader, limit: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.reader = reader
        self.limit = limit
        self.buffer = bytearray()
        self.scanned = 0  # bytes of `buffer` known to hold no end block

    async def next(self) -> bytes | None:
        """The next frame's message; None when the peer closed the connection between frames."""
        while True:
            end = self.buffer.find(END_BLOCK, max(0, self.scanned - 1))
            if end >= 0:
                data = bytes(self.buffer[:end])
                del self.buffer[: end + len(END_BLOCK)]
                self.scanned = 0
                if len(data) > self.limit + 1:
                    raise FrameError(self._too_large(), _after_start(data[:4096]))
                return _message(data)
            self.scanned = len(self.buffer)
            if len(self.buffer) > self.limit:
                head = bytes(self.buffer[:4096])
                await self._skip_frame()
                raise FrameError(self._too_large(), _after_start(head))
            chunk = await self.reader.read(65536)
            if not chunk:
                if bytes(self.buffer).strip():
                    log.warning("MLLP peer closed the connection inside a frame (%d bytes unanswered)", len(self.buffer))
                return None
            self.buffer += chunk

    def _too_large(self) -> str:
        return f"The message is larger than the {self.limit} bytes this listener accepts"

    async def _skip_frame(self) -> None:
        """Drop the rest of an oversized frame, up to and including its end block."""
        tail = bytes(self.buffer[-1:])
        self.buffer.clear()
        self.scanned = 0
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            end = (tail + chunk).find(END_BLOCK)
            if end >= 0:
                self.buffer += (tail + chunk)[end + len(END_BLOCK):]
                return
            tail = chunk[-1:]


def _message(data: bytes) -> bytes:
    start = data.find(START_BLOCK)
    if start < 0:
        raise FrameError("The frame has no start block (0x0B) before its end block (0x1C 0x0D)", data)
    if data[:start].strip():
        log.warning("MLLP: %d bytes before a start block were ignored", start)
    return data[start + 1 :]


def _after_start(data: bytes) -> bytes:
    start = data.find(START_BLOCK)
    return data[start + 1 :] if start >= 0 else data


class MessageHandler(Protocol):
    def check(self, message: bytes) -> Any:
        """What to store for a frame's message (its arrival)."""

    def refused(self, content: bytes, reason: str) -> Any:
        """What to store for a frame that broke MLLP."""

    def store_all(self, arrivals: Sequence[Any]) -> list[bytes] | None:
        """Store the arrivals at once; each one's encoded ACK, or None if nothing was stored."""


class MllpServer:
    """Serves MLLP on one port: one task per connection, and one committer that stores what
    arrived on all connections in one handler call (in a thread) before any of it is answered."""

    def __init__(self, handler: MessageHandler, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 max_batch: int = MAX_BATCH) -> None:
        self.handler = handler
        self.max_message_bytes = max_message_bytes
        self.max_batch = max_batch
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ficus-mllp")
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task] = set()
        self.waiting: list[tuple[Any, asyncio.Future[bytes | None]]] = []
        self.arrived: asyncio.Event | None = None
        self.committer: asyncio.Task | None = None

    async def start(self, host: str, port: int, reuse_port: bool = False) -> None:
        self.arrived = asyncio.Event()
        self.committer = asyncio.create_task(self._commit())
        self.server = await asyncio.start_server(self._serve, host, port, reuse_port=reuse_port or None)

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.sockets
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop accepting and close every connection; a commit in progress completes (its
        messages stay stored even if their ACKs are not sent, and the senders resend)."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
        if self.committer is not None:
            self.committer.cancel()
            await asyncio.gather(self.committer, return_exceptions=True)
        self.executor.shutdown(wait=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        loop = asyncio.get_running_loop()
        frames = FrameReader(reader, self.max_message_bytes)
        try:
            while True:
                try:
                    message = await frames.next()
                except FrameError as error:
                    arrival = self.handler.refused(error.content, error.reason)
                else:
                    if message is None:
                        return
                    if len(message) > LARGE_MESSAGE_BYTES:  # keep the event loop free for the others
                        arrival = await loop.run_in_executor(self.executor, self.handler.check, message)
                    else:
                        arrival = self.handler.check(message)
                reply = await self._stored(arrival)
                if reply is None:
                    return
                writer.write(frame(reply))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        except Exception:  # one connection's failure must not stop the listener
            log.exception("MLLP connection failed")
        finally:
            if task is not None:
                self.connections.discard(task)
            writer.close()

    def _stored(self, arrival: Any) -> asyncio.Future[bytes | None]:
        """The ACK of `arrival` once the committer has stored it (None: it could not be)."""
        assert self.arrived is not None
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self.waiting.append((arrival, future))
        self.arrived.set()
        return future

    async def _commit(self) -> None:
        """Store whatever has arrived since the last commit, in one call; while a commit runs,
        the next batch gathers, so the batch grows with the load and adds no delay when idle."""
        assert self.arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            await self.arrived.wait()
            self.arrived.clear()
            while self.waiting:
                batch, self.waiting = self.waiting[: self.max_batch], self.waiting[self.max_batch :]
                try:
                    replies = await loop.run_in_executor(self.executor, self.handler.store_all, [a for a, _ in batch])
                except Exception:  # nothing stored, nothing answered: the senders resend
                    log.exception("MLLP batch could not be stored")
                    replies = None
                for position, (_, future) in enumerate(batch):
                    if not future.done():
                        future.set_result(replies[position] if replies is not None else None)


async def exchange(host: str, port: int, messages: Sequence[bytes], timeout: float = 30.0) -> list[bytes]:
    """Send messages in order on one connection; returns each ACK's content."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    frames = FrameReader(reader)
    try:
        acks = []
        for message in messages:
            writer.write(frame(message))
            await writer.drain()
            ack = await asyncio.wait_for(frames.next(), timeout)
            if ack is None:
                raise ConnectionError("The listener closed the connection without an ACK")
            acks.append(ack)
        return acks
    finally:
        writer.close()
