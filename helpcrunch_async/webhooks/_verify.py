"""Verifying and parsing webhook deliveries, and remembering which events were handled."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .._config import is_number, require_int
from .._errors import ResponseValidationError, WebhookVerificationError
from ._events import WebhookEvent

__all__ = [
    "DEFAULT_DEDUP_SIZE",
    "DEFAULT_DEDUP_TTL",
    "MAX_BODY_SIZE",
    "MAX_JSON_DEPTH",
    "SIGNATURE_HEADER",
    "EventDeduplicator",
    "parse_event",
    "sign",
]

#: The header HelpCrunch signs each delivery in.
SIGNATURE_HEADER = "X-HelpCrunch-Signature"
#: Largest body accepted, in bytes. A chat or a customer is a few kilobytes; a megabyte is
#: far more than any documented event and small enough to hold and hash without a thought.
MAX_BODY_SIZE = 1024 * 1024
#: Deepest JSON nesting accepted. The documented envelopes nest four levels; custom data
#: may add a few. Deeper is hostile, and Python's parser would recurse on it.
MAX_JSON_DEPTH = 32
#: Longest integer literal accepted in a body: ids are 64-bit, so 20 digits; more is a
#: quadratic-time int conversion waiting to happen on Python 3.10.
MAX_INT_DIGITS = 32
#: Event ids an ``EventDeduplicator`` remembers by default.
DEFAULT_DEDUP_SIZE = 10_000
#: Seconds an ``EventDeduplicator`` remembers an id by default: a day, longer than any
#: redelivery schedule is likely to last.
DEFAULT_DEDUP_TTL = 24 * 3600.0


def check_signing_key(signing_key: object) -> bytes:
    """The key as bytes, if it is a non-empty str; else a ``TypeError``/``ValueError``."""
    if not isinstance(signing_key, str):
        raise TypeError(f"signing_key must be a str, not {type(signing_key).__name__}")
    if not signing_key.strip():
        raise ValueError("signing_key is empty: copy the HTTP Webhook Signing Key from HelpCrunch")
    return signing_key.encode()


def sign(body: bytes, signing_key: str) -> str:
    """The ``X-HelpCrunch-Signature`` of ``body``: lowercase hex HMAC-SHA1 keyed with the key.

    Useful to sign deliveries in your own tests; the emulator signs with it.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    return hmac.new(check_signing_key(signing_key), body, hashlib.sha1).hexdigest()


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise ValueError("integer literal too long")
    return int(text)


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_event(body: bytes, signature: str | None, *, signing_key: str) -> WebhookEvent:
    """Verify a webhook delivery's signature, then parse its envelope.

    ``body`` is the raw request body, exactly as received (verify before decoding anything);
    ``signature`` the ``X-HelpCrunch-Signature`` header, or ``None`` when it is missing. The
    signature is checked in constant time against the HMAC-SHA1 of ``body`` keyed with
    ``signing_key`` (Settings → Developers → Webhooks in HelpCrunch).

    Example:
        >>> event = parse_event(  # doctest: +SKIP
        ...     await request.body(),
        ...     request.headers.get("X-HelpCrunch-Signature"),
        ...     signing_key=os.environ["HELPCRUNCH_WEBHOOK_KEY"],
        ... )
        >>> if event.type == "chat.new": ...  # doctest: +SKIP

    Raises:
        TypeError, ValueError: ``body`` is not bytes, or the signing key is not a non-empty str.
        WebhookVerificationError: the signature is missing or wrong (``reason="signature"``),
            the body is over ``MAX_BODY_SIZE`` (``"size"``), or a correctly signed body is not
            a valid envelope (``"envelope"``). Never a raw JSON or key error.
    """
    key = check_signing_key(signing_key)
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    body = bytes(body)
    if len(body) > MAX_BODY_SIZE:
        raise WebhookVerificationError(
            f"body of {len(body)} bytes is over the {MAX_BODY_SIZE}-byte cap", reason="size"
        )
    if signature is None or not str(signature).strip():
        raise WebhookVerificationError(f"no {SIGNATURE_HEADER} header", reason="signature")
    if not isinstance(signature, str):
        raise TypeError(f"signature must be a str or None, not {type(signature).__name__}")
    expected = hmac.new(key, body, hashlib.sha1).hexdigest().encode()
    given = signature.strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(expected, given):
        raise WebhookVerificationError(
            f"{SIGNATURE_HEADER} does not match the body: not signed with this key, "
            "or tampered with",
            reason="signature",
        )
    try:
        payload = json.loads(body, parse_int=_bounded_int)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, our int cap
        raise WebhookVerificationError("signed body is not JSON", reason="envelope") from None
    if _too_deep(payload, MAX_JSON_DEPTH):
        raise WebhookVerificationError(
            f"signed body nests deeper than {MAX_JSON_DEPTH} levels", reason="envelope"
        )
    try:
        return WebhookEvent.from_json(payload)
    except ResponseValidationError as exc:
        raise WebhookVerificationError(
            f"signed body is not a valid event envelope: {exc}", reason="envelope"
        ) from None


class EventDeduplicator:
    """The ids of recent events, so that a redelivered event is handled once.

    HelpCrunch redelivers an event (same ``id``, ``attempts`` + 1) when a delivery failed or
    timed out, even if your handler did the work. Claim the id before handling, and release
    it if handling failed, so that the next redelivery is handled::

        if dedup.claim(event.id):
            try:
                await handle(event)
            except Exception:
                dedup.release(event.id)
                raise

    ``WebhookEndpoint(..., deduplicator=dedup)`` does exactly that. Memory is bounded: at most
    ``max_events`` ids (the oldest forgotten first), each for at most ``ttl`` seconds. It
    lives in one process; a fleet of bot processes needs a shared store (Redis ``SET NX EX``
    on the event id does the same job).

    Args:
        max_events: Ids remembered at most.
        ttl: Seconds an id is remembered.
        clock: Monotonic seconds; ``time.monotonic`` unless a test passes its own.
    """

    def __init__(
        self,
        *,
        max_events: int = DEFAULT_DEDUP_SIZE,
        ttl: float = DEFAULT_DEDUP_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        require_int(max_events, "max_events", minimum=1)
        if not is_number(ttl):
            raise TypeError(f"ttl must be a number, not {type(ttl).__name__}")
        if not ttl > 0:
            raise ValueError(f"ttl must be > 0, got {ttl!r}")
        self.max_events = max_events
        self.ttl = float(ttl)
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"EventDeduplicator(max_events={self.max_events}, ttl={self.ttl}, held={len(self)})"

    def _expire(self) -> None:
        now = self._clock()
        while self._seen:
            event_id, at = next(iter(self._seen.items()))
            if now - at < self.ttl:
                return
            del self._seen[event_id]

    def claim(self, event_id: str) -> bool:
        """Record ``event_id``; ``True`` if it was not already recorded (handle the event).

        Raises:
            TypeError: ``event_id`` is not a str.
        """
        if not isinstance(event_id, str):
            raise TypeError(f"event_id must be a str, not {type(event_id).__name__}")
        self._expire()
        if event_id in self._seen:
            return False
        self._seen[event_id] = self._clock()
        while len(self._seen) > self.max_events:
            self._seen.popitem(last=False)
        return True

    def release(self, event_id: str) -> None:
        """Forget ``event_id`` (its handling failed), so that a redelivery is handled."""
        self._seen.pop(event_id, None)

    def __contains__(self, event_id: object) -> bool:
        self._expire()
        return event_id in self._seen

    def __len__(self) -> int:
        self._expire()
        return len(self._seen)
