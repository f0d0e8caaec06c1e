"""A TCP proxy on 127.0.0.1 that can cut a server off and bring it back, on the same port.

Tests point a store at ``proxy.port`` instead of the real server, then ``cut()`` it (the
listener closes and every live connection is aborted, as if the server had died) and
``restore()`` it. ``hold()`` stops forwarding what clients send while every connection
stays open, as if the server had stopped answering: ``await proxy.held.wait()`` returns
once a client has sent a request that the server has not seen. A test can then ``cut()``
the server while that request is in flight, or ``restore()`` it: what was held is
forwarded then, late, as a server that hung and recovered would finally read it.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target``; use ``async with TcpProxy(...)``."""

    def __init__(self, target: tuple[str, int], *, port: int = 0) -> None:
        self.target = target
        self.port = port  # 0: a free one
        self.held = asyncio.Event()
        self._flowing = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> TcpProxy:
        await self.restore()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.cut()

    @property
    def up(self) -> bool:
        """True while the proxy accepts connections."""
        return self._server is not None

    async def restore(self) -> None:
        """Listen again (on the same port after the first time), forward what was held."""
        self.held.clear()
        self._flowing.set()
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]

    def hold(self) -> None:
        """From now on keep client bytes instead of forwarding them (see ``held``)."""
        self._flowing.clear()

    async def cut(self) -> None:
        """Stop listening and abort every live connection, both sides."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        if self._server is None:  # cut while this connection was being opened
            client_w.transport.abort()
            server_w.transport.abort()
            return
        self._writers.update((client_w, server_w))
        for task in (
            asyncio.create_task(self._pipe(client_r, server_w, upstream=True)),
            asyncio.create_task(self._pipe(server_r, client_w, upstream=False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if upstream and not self._flowing.is_set():
                    self.held.set()
                    await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)


class SilentListener:
    """Accept TCP connections on ``127.0.0.1:<port>`` and never answer (``async with``).

    What a client meets when a server hangs before its first byte, or a firewall or a
    stopped process holds the port: the connection opens, then nothing.
    """

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> SilentListener:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and drop every connection (their clients see them closed)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            with contextlib.suppress(OSError):
                while await reader.read(65536):  # read and drop what clients send, answer nothing
                    pass
        finally:
            self._writers.discard(writer)
            writer.close()
