"""A Starlette web backend that updates a chat per request, sharing one client.

One HelpCrunch client is created at startup (lifespan) and shared by every request, so all
handlers share its connection pool and its rate limit. Run it for real with:

    HELPCRUNCH_API_KEY=... uvicorn examples.web_backend:app

Run as a script, it starts an emulator, serves the app on a free port, calls it a few times
concurrently, and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, serve


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with hc.HelpCrunch() as client:  # HELPCRUNCH_API_KEY / HELPCRUNCH_BASE_URL
        app.state.helpcrunch = client
        yield


async def set_status(request: Request) -> JSONResponse:
    client: hc.HelpCrunch = request.app.state.helpcrunch
    try:
        status = hc.ChatStatus.parse((await request.json())["status"])
        chat = await client.chats.update_status(int(request.path_params["chat_id"]), status)
    except (KeyError, ValueError, TypeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    except hc.NotFoundError:
        return JSONResponse({"error": "no such chat"}, status_code=404)
    except hc.HelpCrunchError as exc:
        return JSONResponse({"error": str(exc)}, status_code=502)
    return JSONResponse({"id": chat.id, "status": str(chat.status)})


app = Starlette(
    routes=[Route("/chats/{chat_id:int}/status", set_status, methods=["POST"])],
    lifespan=lifespan,
)


async def demo() -> None:
    async with serve(EmulatorConfig(chats=10)) as emulator:
        os.environ["HELPCRUNCH_API_KEY"] = emulator.api_key
        os.environ["HELPCRUNCH_BASE_URL"] = emulator.base_url
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=url) as http:
            ids = [*sorted(emulator.state.chats)[:5], 1]  # and one unknown chat
            answers = await asyncio.gather(
                *(http.post(f"/chats/{i}/status", json={"status": "on hold"}) for i in ids)
            )
        for answer in answers:
            print(answer.status_code, answer.json())
        server.should_exit = True
        await task


if __name__ == "__main__":
    asyncio.run(demo())
