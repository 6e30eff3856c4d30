"""Receiving HelpCrunch's webhooks: verify the signature, parse the event, handle it once.

HelpCrunch POSTs each event to your URL as JSON, signed in ``X-HelpCrunch-Signature`` with
the account's HTTP Webhook Signing Key. ``parse_event`` checks the signature against the raw
body, in constant time, before decoding anything, and gives a typed ``WebhookEvent``:

```python
from helpcrunch_async.webhooks import parse_event

event = parse_event(raw_body, signature_header, signing_key=key)
if event.type == "chat.new":
    chat_id = event.data.chat_id
```

``WebhookEndpoint`` (with the ``webhooks`` extra: ``pip install "helpcrunch-async[webhooks]"``)
is a ready ASGI app doing that for every delivery, awaiting your handler and answering so that
HelpCrunch redelivers what failed; ``EventDeduplicator`` makes a redelivered event run once.

``event.data`` is a ``ChatEventData`` for the ``chat.*`` events (``CHAT_EVENTS``), a
``MessageEventData`` for ``message.*`` (``MESSAGE_EVENTS``), a ``CustomerEventData`` for
``customer.*`` (``CUSTOMER_EVENTS``), and for a type this SDK does not know yet the
``eventData`` object itself: unknown events are kept, never refused.
"""

from __future__ import annotations

from .._errors import WebhookVerificationError
from .._models._json import MAX_JSON_DEPTH
from ._dedup import DEFAULT_DEDUP_SIZE, DEFAULT_DEDUP_TTL, EventDeduplicator
from ._endpoint import DEFAULT_BODY_TIMEOUT, WebhookEndpoint
from ._events import (
    CHAT_EVENTS,
    CUSTOMER_EVENTS,
    MESSAGE_EVENTS,
    ChatEventData,
    CustomerEventData,
    MessageEventData,
    WebhookEvent,
)
from ._verify import MAX_BODY_SIZE, SIGNATURE_HEADER, parse_event, sign

__all__ = [
    "CHAT_EVENTS",
    "CUSTOMER_EVENTS",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_DEDUP_SIZE",
    "DEFAULT_DEDUP_TTL",
    "MAX_BODY_SIZE",
    "MAX_JSON_DEPTH",
    "MESSAGE_EVENTS",
    "SIGNATURE_HEADER",
    "ChatEventData",
    "CustomerEventData",
    "EventDeduplicator",
    "MessageEventData",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookVerificationError",
    "parse_event",
    "sign",
]

# Tracebacks and reprs show the public path, as httpx does.
for _name in (
    "ChatEventData",
    "CustomerEventData",
    "EventDeduplicator",
    "MessageEventData",
    "WebhookEndpoint",
    "WebhookEvent",
    "parse_event",
    "sign",
):
    globals()[_name].__module__ = __name__
del _name
