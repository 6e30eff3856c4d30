"""Webhooks in a test: the events the emulator's changes caused, signed and delivered on demand.

The kit delivers when the test asks (``await deliver(...)``), on the test's own event loop,
rather than from the emulator's thread as it goes: the user's app then runs on the loop its
objects belong to (asyncio or trio), and when ``deliver`` returns the app has seen every
event caused so far: no waiting, no timing. The envelopes, bodies and signatures are the
emulator's webhook sender's, which are HelpCrunch's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from ._session import SessionEmulator

__all__ = ["EmulatorWebhooks"]

#: Where a delivery to an app in process says it goes, for a ``url`` that is only a path.
ASGI_ORIGIN = "http://testserver"


class EmulatorWebhooks:
    """The webhooks of the emulator a test talks to: ``helpcrunch_emulator.webhooks``.

    Each change the emulator applies (a status, an assignee, a new chat, a message, a
    customer...) causes the event HelpCrunch would send. ``deliver`` POSTs them, signed as
    HelpCrunch signs them, to your ASGI app in process (``httpx.ASGITransport``) or to a URL,
    in the order they happened, and returns the answers:

    ```python
    app = make_app(client=helpcrunch_client, signing_key=helpcrunch_emulator.webhooks.signing_key)
    await helpcrunch_client.chats.update_status(5215700, "closed")
    answers = await helpcrunch_emulator.webhooks.deliver("/helpcrunch/webhooks", app=app)
    assert [200, 200] == [answer.status_code for answer in answers]  # status_updated, closed
    ```

    Your app verifies them with ``signing_key``. An app that raises fails the test with its
    exception, as Starlette's ``TestClient`` does.
    """

    def __init__(self, session: SessionEmulator) -> None:
        self._session = session
        #: Deliveries made of each event, by id: the next one's ``attempts``.
        self._attempts: dict[str, int] = {}

    @property
    def signing_key(self) -> str:
        """The key deliveries are signed with (never shown in a repr).

        Give it to your app, or give your app's key to the emulator: the
        ``webhook_signing_key`` setting.
        """
        return self._session.state.config.webhook_signing_key

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event the emulator's changes caused in this test, oldest first.

        Envelopes as HelpCrunch sends them (``id``, ``event``, ``eventData``, ``createdAt``),
        delivered or not: ``[e["event"] for e in webhooks.events]`` lists what happened.
        """
        return self._session.state.recording.events()

    def envelope(self, event: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """A new event of your own, wrapped as HelpCrunch wraps its events: ``deliver`` it.

        Args:
            event: Its type, such as ``"chat.closed"``.
            data: Its ``eventData``.
        """
        from ..emulator._webhooks import envelope  # noqa: PLC0415 - the emulator's extra

        if not isinstance(event, str):
            raise TypeError(f"event must be a str, not {type(event).__name__}")
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping, not {type(data).__name__}")
        return envelope(event, dict(data))

    async def deliver(
        self,
        url: str,
        *,
        app: ASGIApp | None = None,
        events: Iterable[Mapping[str, Any]] | None = None,
    ) -> list[httpx.Response]:
        """POST events, signed, one after the other; return the answers in the same order.

        Args:
            url: Where: with ``app``, a path of it (``"/helpcrunch/webhooks"``); without, an
                ``http(s)://`` URL.
            app: Your ASGI app, called in process on this test's event loop (its lifespan
                is not run: build it with what its lifespan would give it).
            events: The envelopes to deliver (``events``' own, again, or ``envelope()``'s);
                by default every event caused and not delivered yet. Each delivery counts
                ``attempts`` up for its event from 0, as HelpCrunch's redeliveries do.

        Raises:
            TypeError, ValueError: a bad argument, before anything is sent.
            httpx.HTTPError: a URL that cannot be reached.
        """
        from ..emulator._webhooks import DELIVERY_TIMEOUT, delivery  # noqa: PLC0415

        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        if app is None and not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http(s) URL without an app, got {url!r}")
        if app is not None and not callable(app):
            raise TypeError(f"app must be an ASGI app, not {type(app).__name__}")
        chosen = [_checked(e) for e in (self._pending() if events is None else events)]
        transport = None if app is None else httpx.ASGITransport(app=app)
        answers = []
        async with httpx.AsyncClient(
            transport=transport, base_url=ASGI_ORIGIN, timeout=DELIVERY_TIMEOUT, trust_env=False
        ) as http:
            for envelope in chosen:
                attempt = self._attempts.get(envelope["id"], 0)  # 0: a first delivery
                self._attempts[envelope["id"]] = attempt + 1
                body, headers = delivery(envelope, attempt, self.signing_key)
                answers.append(await http.post(url, content=body, headers=headers))
        return answers

    def _pending(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event["id"] not in self._attempts]


def _checked(envelope: object) -> dict[str, Any]:
    if not isinstance(envelope, Mapping) or not isinstance(envelope.get("id"), str):
        raise TypeError("events must be envelopes: mappings with an 'id', as events holds")
    return dict(envelope)
