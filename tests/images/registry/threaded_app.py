"""An aiohttp application served on 127.0.0.1 from a thread of its own (the registry tests' helper servers)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web


class ThreadedApp:
    """Serves the application `make_app` builds (inside the server's loop) until `stop`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def start(self, make_app: Callable[[], Awaitable[web.Application]]) -> int:
        started = threading.Event()
        loop = self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._runner = web.AppRunner(await make_app(), access_log=None, shutdown_timeout=0.1)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            self.port = self._runner.addresses[0][1]

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
            started.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not started.wait(30):
            raise RuntimeError(f"{self.name} did not start")
        return self.port

    def stop(self, on_close: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop serving; `on_close` runs in the server's loop after the application is cleaned up."""
        if self._loop is None or self._thread is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            if on_close is not None:
                await on_close()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(30)
        loop.close()
        self._loop = None
