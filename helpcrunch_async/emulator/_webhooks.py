"""The emulator's webhooks: every change it applies, POSTed signed to a URL, redelivered on failure.

API handlers only queue an event (never waiting on the receiver); one background task delivers
them in the order they happened, and each failed delivery is retried in a task of its own, with
tenacity's exponential backoff, the same ``id`` and ``attempts`` counting up (0 on the first
delivery, as in HelpCrunch's documented example: the tries made before this one), so that one
failing event never holds back the next ones.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import tenacity

from ..webhooks._verify import SIGNATURE_HEADER, sign

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectSendStream

    from ._state import EmulatorConfig

__all__ = ["WebhookSender", "delivery", "envelope", "message_event", "webhook_chat"]

logger = logging.getLogger("helpcrunch_async.emulator")

#: Events waiting for delivery at most; past it new ones are dropped (and counted), so a
#: receiver that never answers cannot make the emulator's memory grow.
QUEUE_SIZE = 1000
#: Seconds one delivery may take, answer included.
DELIVERY_TIMEOUT = 10.0
#: Longest wait between two redeliveries, in seconds.
MAX_REDELIVERY_WAIT = 60.0


def _seconds(value: float | None) -> str | None:
    """Webhook timestamps are decimal strings with milliseconds, unlike the REST answers."""
    return None if value is None else f"{value:.3f}"


def webhook_chat(chat: dict[str, Any]) -> dict[str, Any]:
    """A chat in the webhooks' own shape (``communicatedAgents`` as ids, decimal timestamps)."""
    return {
        "id": chat["id"],
        "status": chat["status"],
        "closedBy": chat["closedBy"],
        "closedAt": _seconds(chat["closedAt"]),
        "createdAt": _seconds(chat["createdAt"]),
        "lastMessageAt": _seconds(chat["lastMessageAt"]),
        "snoozedUntil": _seconds(chat["snoozedUntil"]),
        "rating": chat["rating"],
        "customer": chat["customer"],
        "assignee": chat["assignee"],
        "department": chat["department"],
        "communicatedAgents": [agent["id"] for agent in chat["agents"]],
        "applicationId": chat.get("applicationId"),
    }


def message_event(chat: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    """The ``eventData`` of a ``message.*`` event (``chat_id`` in snake_case, as documented)."""
    return {
        "chat_id": chat["id"],
        "agent": message["agent"],
        "customer": chat["customer"],
        "message": {
            "id": message["id"],
            "text": message["text"],
            "createdAt": _seconds(message["createdAt"]),
            "updatedAt": _seconds(message["createdAt"]),
            "read": False,
            "edited": False,
            "applicationId": chat.get("applicationId"),
            "broadcastType": None,
        },
    }


def envelope(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """A new event as HelpCrunch wraps it; ``data`` is copied (the chat will change again)."""
    return {
        "id": str(uuid.uuid4()),
        "event": event,
        "eventData": json.loads(json.dumps(data)),
        "createdAt": int(time.time()),
    }


def delivery(
    envelope: dict[str, Any], attempt: int, signing_key: str
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery of ``envelope``, signed.

    ``attempt`` is the number of tries made before it (0 for the first), as HelpCrunch counts.
    """
    body = json.dumps({**envelope, "attempts": attempt, "lastAttemptAt": int(time.time())})
    raw = body.encode()
    return raw, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, signing_key)}


class WebhookSender:
    """Queues events from the API handlers and delivers them while ``run()`` runs."""

    def __init__(self, config: EmulatorConfig) -> None:
        if config.webhook_url is None:
            raise ValueError("no webhook_url to send to")
        self.url = config.webhook_url
        self._key = config.webhook_signing_key
        self.attempts = config.webhook_attempts
        self.backoff = config.webhook_backoff
        # Made by run(), so that no stream outlives the loop it was used in.
        self._send: MemoryObjectSendStream[dict[str, Any]] | None = None
        #: Deliveries answered 2xx, events given up on after every attempt, events dropped
        #: because the queue was full.
        self.delivered = self.given_up = self.dropped = 0

    def emit(self, envelope: dict[str, Any]) -> None:
        """Queue one event (made by ``envelope()``); never waits.

        An event is dropped (and counted) when the queue is full, or when ``run()`` is not
        running (an app served without its lifespan).
        """
        try:
            if self._send is not None:
                self._send.send_nowait(envelope)
                return
        except (anyio.WouldBlock, anyio.ClosedResourceError):
            pass
        self.dropped += 1
        logger.warning(
            "webhook %s dropped: the queue is full or the sender is not running", envelope["event"]
        )

    async def run(self) -> None:
        """Deliver queued events until cancelled."""
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](QUEUE_SIZE)
        self._send = send
        try:
            async with (
                httpx.AsyncClient(timeout=DELIVERY_TIMEOUT) as http,
                anyio.create_task_group() as tasks,
                send,
                receive,
            ):
                async for envelope in receive:
                    if not await self._deliver(http, envelope, 0) and self.attempts > 1:
                        tasks.start_soon(self._redeliver, http, envelope)
        finally:
            self._send = None

    async def _deliver(
        self, http: httpx.AsyncClient, envelope: dict[str, Any], attempt: int
    ) -> bool:
        raw, headers = delivery(envelope, attempt, self._key)
        try:
            response = await http.post(self.url, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            logger.info("webhook %s attempt %d failed: %r", envelope["event"], attempt, exc)
            return False
        if response.is_success:
            self.delivered += 1
            return True
        logger.info(
            "webhook %s attempt %d: HTTP %d", envelope["event"], attempt, response.status_code
        )
        return False

    async def _redeliver(self, http: httpx.AsyncClient, envelope: dict[str, Any]) -> None:
        numbers = iter(range(1, self.attempts))

        async def again() -> bool:
            return await self._deliver(http, envelope, next(numbers))

        retrying = tenacity.AsyncRetrying(
            sleep=anyio.sleep,
            stop=tenacity.stop_after_attempt(self.attempts - 1),
            # backoff before the first redelivery (below), then twice that, doubling.
            wait=tenacity.wait_exponential(multiplier=2 * self.backoff, max=MAX_REDELIVERY_WAIT),
            retry=tenacity.retry_if_result(lambda delivered: not delivered),
            retry_error_callback=lambda _: False,
        )
        await anyio.sleep(self.backoff)
        delivered: bool = await retrying(again)
        if not delivered:
            self.given_up += 1
            logger.warning(
                "webhook %s given up after %d attempts", envelope["event"], self.attempts
            )
