"""The servers' HTTP protocol (http/transport.py) on a real uvicorn server and socket:
an answer leaves in one send, a head whose body comes later is not held back, and a
closing connection still gets everything written before the close."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
import uvloop

from stemedb.http.transport import JoinedWritesProtocol
from stemedb.server import _config

App = Callable[..., Any]


class CountingProtocol(JoinedWritesProtocol):
    """Counts the writes that reach the real (uvloop) transport."""

    sends: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        real_write = transport.write

        class Counted:
            def __getattr__(self, name: str) -> Any:
                return getattr(transport, name)

            def write(self, data: bytes) -> None:
                CountingProtocol.sends.append(bytes(data))
                real_write(data)

        super().connection_made(Counted())  # type: ignore[arg-type]


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    config = _config(app, "127.0.0.1", 0)
    config.http = CountingProtocol
    config.lifespan = "off"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def exchange(port: int, request: bytes, until: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    got = b""
    while until not in got:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        if not chunk:
            break
        got += chunk
    writer.close()
    return got


async def small(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


def test_an_answer_leaves_in_one_send() -> None:
    async def main() -> None:
        CountingProtocol.sends = []
        async with serving(small) as port:
            got = await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"hello")
            got += await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"hello")
        assert got.count(b"HTTP/1.1 200 OK") == 2
        assert len(CountingProtocol.sends) == 2  # one per answer, head and body together
        assert all(s.startswith(b"HTTP/1.1 200") and s.endswith(b"hello")
                   for s in CountingProtocol.sends)

    uvloop.run(main())


def test_a_head_is_not_held_back_until_a_later_body() -> None:
    released = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"4")]})
        await released.wait()
        await send({"type": "http.response.body", "body": b"late"})

    async def main() -> None:
        CountingProtocol.sends = []
        async with serving(slow) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            released.set()
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"late"
            writer.close()
        assert len(CountingProtocol.sends) == 2

    uvloop.run(main())


def test_a_closing_connection_gets_everything_written_before_the_close() -> None:
    async def main() -> None:
        CountingProtocol.sends = []
        async with serving(small) as port:
            got = await exchange(
                port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"hello")
            assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"hello")
            # two pipelined requests, the second closing: both answers, then the end
            two = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = await exchange(port, two, b"\0")  # reads to the end of the stream
            assert got.count(b"HTTP/1.1 200") == 2 and got.endswith(b"hello")

    uvloop.run(main())
