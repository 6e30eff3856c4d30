"""A ready ASGI endpoint for HelpCrunch's webhooks: verify, parse, hand to a handler, answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from .._config import finite_number, require_int
from .._errors import WebhookVerificationError
from .._settings import Secret
from ._dedup import EventDeduplicator
from ._verify import MAX_BODY_SIZE, SIGNATURE_HEADER, signing_key_bytes, verify_and_parse

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from ._events import WebhookEvent

__all__ = ["DEFAULT_BODY_TIMEOUT", "WebhookEndpoint"]

#: Seconds a delivery's body may take to arrive, from the first read to the last byte.
#: HelpCrunch's deliveries are a few kilobytes sent at once; a sender trickling a byte at a
#: time must not hold a connection (and a worker) for ever.
DEFAULT_BODY_TIMEOUT = 10.0


class _Disconnected(Exception):  # noqa: N818 - internal: the sender left mid-body
    """The sender closed the connection before the whole body arrived."""


logger = logging.getLogger("helpcrunch_async.webhooks")

#: The answer to each kind of refused delivery. HelpCrunch retries on a non-2xx; a 4xx
#: says "do not bother", which is the honest answer to a delivery that will never verify.
_REFUSALS = {"signature": 401, "size": 413, "envelope": 400}
#: Answers sent before the whole body was read (too slow, too large).
_UNREAD = frozenset({408, 413})


class WebhookEndpoint:
    """An ASGI app that receives HelpCrunch's webhook deliveries (needs the ``webhooks`` extra).

    Each ``POST`` is verified and parsed with ``parse_event``, then awaited in ``handler``.
    The answer tells HelpCrunch whether to deliver again:

    - 200 when the handler returned (or the event was already handled: a replay);
    - 401 for a missing or wrong signature, 413 for a body over ``max_body_size``, 400 for
      a signed body that is not an envelope (the handler is not called);
    - 500 when the handler raised, so that HelpCrunch redelivers; the exception is logged
      on the ``helpcrunch_async.webhooks`` logger;
    - 408 when the body did not arrive within ``body_timeout`` (the handler is not called);
    - 405 for any other method.

    A sender that disconnects before its body is whole made no delivery: the handler is not
    called, nothing is answered (nobody is listening), and one line is logged at INFO,
    without a traceback. HelpCrunch delivers the event again.

    Mount it in any ASGI framework, or serve it alone:

    ```python
    endpoint = WebhookEndpoint(on_event, signing_key=key, deduplicator=EventDeduplicator())
    app = Starlette(routes=[Route("/helpcrunch/webhooks", endpoint, methods=["POST"])])
    ```

    The handler runs before the answer is sent: keep it short (HelpCrunch, like every
    webhook sender, gives up on slow endpoints), or hand long work to a task of your own.

    Args:
        handler: ``async def handler(event: WebhookEvent) -> None``.
        signing_key: The account's HTTP Webhook Signing Key. Never logged or shown.
        deduplicator: An ``EventDeduplicator`` to answer replays of handled events with 200
            without calling the handler again; ``None`` hands every delivery to the handler.
        max_body_size: Largest body read, in bytes; larger ones are refused unread.
        body_timeout: Seconds the whole body may take to arrive (``DEFAULT_BODY_TIMEOUT``);
            past it the delivery is answered 408.
    """

    def __init__(
        self,
        handler: Callable[[WebhookEvent], Awaitable[Any]],
        *,
        signing_key: str,
        deduplicator: EventDeduplicator | None = None,
        max_body_size: int = MAX_BODY_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        given: Secret[object] = Secret(signing_key)
        del signing_key  # from here on the key is in no local of this frame
        try:
            from starlette.requests import Request  # noqa: PLC0415 - an optional extra
            from starlette.responses import PlainTextResponse  # noqa: PLC0415
        except ImportError as exc:  # pragma: no cover - the extra is installed in tests
            raise ImportError(
                'WebhookEndpoint needs Starlette: pip install "helpcrunch-async[webhooks]"'
            ) from exc
        if not callable(handler):
            raise TypeError(f"handler must be an async callable, not {type(handler).__name__}")
        self._key = signing_key_bytes(given)
        if deduplicator is not None and not isinstance(deduplicator, EventDeduplicator):
            raise TypeError("deduplicator must be an EventDeduplicator or None")
        if not 0 < require_int(max_body_size, "max_body_size") <= MAX_BODY_SIZE:
            raise ValueError(f"max_body_size must be between 1 and {MAX_BODY_SIZE}")
        self.body_timeout = finite_number(body_timeout, "body_timeout")
        self._handler = handler
        self.deduplicator = deduplicator
        self.max_body_size = max_body_size
        self._request = Request
        self._response = PlainTextResponse

    def __repr__(self) -> str:
        # A traceback rendered with its locals shows a half-built endpoint too.
        return f"WebhookEndpoint(handler={vars(self).get('_handler')!r}, signing_key=<redacted>)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # served alone: nothing to start or stop
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":  # webhooks are plain POSTs
            await send({"type": "websocket.close", "code": 1008})
            return
        try:
            status, text = await self._answer(scope, receive)
        except _Disconnected:
            logger.info("webhook delivery cut off by its sender before its body arrived; ignored")
            return  # nobody is left to answer
        headers = {"Allow": "POST"} if status == 405 else None  # noqa: PLR2004
        if status in _UNREAD:  # the rest of the body was never read: the connection ends
            headers = {"Connection": "close"}
        await self._response(text, status_code=status, headers=headers)(scope, receive, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        """The body, or ``None`` as soon as it proves longer than the cap.

        Raises:
            _Disconnected: the sender left before the body was whole.
        """
        declared = self._request(scope).headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_size:
            return None
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            body += message.get("body", b"")
            if len(body) > self.max_body_size:
                return None
            if not message.get("more_body", False):
                return bytes(body)

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, str]:
        if scope["method"] != "POST":
            return 405, "Method Not Allowed"
        body: bytes | None = None
        with anyio.move_on_after(self.body_timeout) as reading:
            body = await self._read(scope, receive)
        if reading.cancelled_caught:
            logger.warning("webhook refused: body not received within %g s", self.body_timeout)
            return 408, "Request Timeout"
        if body is None:
            logger.warning("webhook refused: body over %d bytes", self.max_body_size)
            return 413, "Payload Too Large"
        headers = self._request(scope).headers
        try:
            event = verify_and_parse(body, headers.get(SIGNATURE_HEADER), self._key)
        except WebhookVerificationError as exc:
            logger.warning("webhook refused: %s", exc)
            return _REFUSALS.get(exc.reason, 400), str(exc)
        dedup = self.deduplicator
        if dedup is not None and not dedup.claim(event.id):
            logger.info("webhook %s (%s) already handled: replay ignored", event.id, event.type)
            return 200, "duplicate"
        handled = False
        try:
            await self._handler(event)
            handled = True
        except Exception:
            logger.exception("webhook handler failed on %s (%s)", event.id, event.type)
        finally:
            if not handled and dedup is not None:
                dedup.release(event.id)
        return (200, "ok") if handled else (500, "handler failed")
