"""A real MLLP consumer for the outbound tests: an asyncio server on 127.0.0.1 in its own thread
that records every message it receives and answers with the ACK code a test chooses.

It frames and acknowledges with its own few lines of code (not Ficus's), parses what it gets
with python-hl7, and can be stopped and started again on the same port to play a consumer that
is down for a while.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import hl7

START, END = b"\x0b", b"\x1c\x0d"


def control_id(message: str) -> str:
    return str(hl7.parse(message).segment("MSH")[10])


class Consumer:
    def __init__(self, port: int = 0, answer: Callable[[str], str] | None = None) -> None:
        self.port = port
        self.answer = answer or (lambda message: "AA")
        self.received: list[str] = []  # every message received, in arrival order
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None

    def start(self) -> Consumer:
        async def open_server() -> asyncio.Server:
            return await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

        self.server = asyncio.run_coroutine_threadsafe(open_server(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Close the port and every open connection (the consumer is down)."""
        async def close() -> None:
            assert self.server is not None
            self.server.close()
            for task in [t for t in asyncio.all_tasks() if t.get_name().startswith("consumer-conn")]:
                task.cancel()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)

    def shutdown(self) -> None:
        if self.server is not None and self.server.is_serving():
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            task.set_name(f"consumer-conn-{id(task)}")
        buffer = b""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buffer += chunk
                while END in buffer:
                    raw, buffer = buffer.split(END, 1)
                    message = raw[raw.index(START) + 1:].decode("utf-8")
                    code = self.answer(message)
                    with self.lock:
                        self.received.append(message)
                    ack = f"MSH|^~\\&|CONSUMER|TEST|||20240101000000||ACK|A{len(self.received)}|P|2.5.1\rMSA|{code}|{control_id(message)}"
                    if code != "AA":
                        ack += f"\rERR||||E||||Refused by the test consumer ({code})"
                    writer.write(START + ack.encode() + END)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    def messages(self) -> list[str]:
        with self.lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[str]:
        """The received messages once there are at least `count` (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages()
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages, received {len(self.messages())}: {self.messages()}")
