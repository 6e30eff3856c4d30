"""A Starlette web backend that updates a chat per request, sharing one client.

One HelpCrunch client is created at startup (lifespan) and shared by every request, so all
handlers share its connection pool and its rate limit. Handlers are interactive traffic: they
are served before any queued bulk work on the same client, and they never wait more than
``MAX_WAIT`` seconds for their turn: past it they answer 503 with a ``Retry-After`` at once,
having sent nothing. Run it for real with:

    HELPCRUNCH_API_KEY=... uvicorn examples.web_backend:app

Run as a script, it starts an emulator, serves the app on a free port, starts a bulk close of
the emulator's chats on the same client (background traffic), calls the app a few times
meanwhile, as users would, and stops: each call is answered in about one limiter interval
(0.5 s at 120 per minute), although the bulk job keeps the limiter saturated.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import time
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, serve

#: Seconds a request may wait for its turn at the rate limiter before answering 503.
MAX_WAIT = 2.0


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with hc.HelpCrunch() as client:  # HELPCRUNCH_API_KEY / HELPCRUNCH_BASE_URL
        app.state.helpcrunch = client
        yield


async def set_status(request: Request) -> JSONResponse:
    client: hc.HelpCrunch = request.app.state.helpcrunch.with_options(max_wait=MAX_WAIT)
    try:
        status = hc.ChatStatus.parse((await request.json())["status"])
        chat = await client.chats.update_status(int(request.path_params["chat_id"]), status)
    except (KeyError, ValueError, TypeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    except hc.NotFoundError:
        return JSONResponse({"error": "no such chat"}, status_code=404)
    except hc.LimiterTimeoutError as exc:
        # Busy: tell the caller when to come back instead of holding the request open.
        retry_after = str(math.ceil(exc.retry_after or MAX_WAIT))
        return JSONResponse(
            {"error": "busy, retry later"}, status_code=503, headers={"Retry-After": retry_after}
        )
    except hc.HelpCrunchError as exc:
        return JSONResponse({"error": str(exc)}, status_code=502)
    return JSONResponse({"id": chat.id, "status": str(chat.status)})


app = Starlette(
    routes=[Route("/chats/{chat_id:int}/status", set_status, methods=["POST"])],
    lifespan=lifespan,
)


async def demo() -> None:
    async with serve(EmulatorConfig(chats=200)) as emulator:
        os.environ["HELPCRUNCH_API_KEY"] = emulator.api_key
        os.environ["HELPCRUNCH_BASE_URL"] = emulator.base_url
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.01)
        chats = sorted(emulator.state.chats)
        # A bulk job on the same client: background traffic, queued at the limiter.
        client: hc.HelpCrunch = app.state.helpcrunch
        bulk = asyncio.create_task(client.chats.bulk_update_status(chats[5:], "closed"))
        await asyncio.sleep(0.5)  # let the bulk job fill the limiter's queue
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for chat_id in [*chats[:5], 1]:  # and one unknown chat
                started = time.monotonic()
                answer = await http.post(f"/chats/{chat_id}/status", json={"status": "on hold"})
                waited = time.monotonic() - started
                print(answer.status_code, answer.json(), f"in {waited:.2f} s")
        print(f"bulk job meanwhile: {client.stats().requests} requests sent in all")
        bulk.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bulk
        server.should_exit = True
        await task


if __name__ == "__main__":
    asyncio.run(demo())
