"""Every webhook example on HelpCrunch's pages, as documented, is accepted and typed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpcrunch_async.webhooks import (
    SIGNATURE_HEADER,
    ChatEventData,
    CustomerEventData,
    MessageEventData,
    WebhookVerificationError,
    parse_event,
    sign,
)

KEY = "whkey-docs-test"
DOCS = Path(__file__).parent / "data" / "helpcrunch_docs"


def example(name: str) -> dict[str, Any]:
    return dict(json.loads((DOCS / name).read_text()))


DELIVERIES = sorted(p for p in DOCS.glob("webhooks__*.json") if "event" in example(p.name)["body"])
#: The one complete documented delivery: its envelope fills in what the cut copies lost.
COMPLETE = example("webhooks__message.chat.customer__delivery__pl-copy.json")
ENVELOPE = {k: v for k, v in COMPLETE["body"].items() if k not in ("event", "eventData")}
#: Where a cut copy lost a chat's id too: the id of the chat the complete example is about.
CHAT_ID = COMPLETE["body"]["eventData"]["chat_id"]

DATA_CLASSES = {"chat": ChatEventData, "message": MessageEventData, "customer": CustomerEventData}


def documented(path: Path) -> tuple[dict[str, Any], bool]:
    """The delivery as documented, with what a cut copy lost filled in; and whether it was cut."""
    example = json.loads(path.read_text())
    body = dict(example["body"])
    if example["complete"]:
        return body, False
    body = {**ENVELOPE, **body}
    if body["event"].startswith("chat.") and "id" not in body["eventData"]:
        body["eventData"] = {**body["eventData"], "id": CHAT_ID}
    return body, True


def delivered(body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    return parse_event(raw, sign(raw, KEY), signing_key=KEY)


def test_every_documented_delivery_file_is_here():
    """Four documented deliveries (one complete, three cut off in every stored copy)."""
    assert 4 == len(DELIVERIES)
    assert [False, True, True, True] == sorted(documented(path)[1] for path in DELIVERIES)


@pytest.mark.parametrize("path", DELIVERIES, ids=lambda path: path.stem)
def test_a_documented_delivery_is_accepted_and_typed(path):
    """The example parses to its typed data, with every documented field it carries."""
    body, _ = documented(path)

    event = delivered(body)

    assert body["event"] == event.type
    assert DATA_CLASSES[body["event"].split(".")[0]] is type(event.data)
    assert body["id"] == event.id
    assert isinstance(event.data, ChatEventData | MessageEventData | CustomerEventData)
    assert body["eventData"] == dict(event.data.raw)


def test_the_documented_first_delivery_has_attempts_0():
    """HelpCrunch's example delivery: attempts 0, a first delivery, its fields typed."""
    event = delivered(COMPLETE["body"])

    assert (0, False) == (event.attempts, event.is_redelivery)
    assert isinstance(event.data, MessageEventData)
    assert event.data.message is not None
    assert (5224081, 38488) == (event.data.chat_id, event.data.message.id)
    assert event.data.agent is None
    assert event.created_at is not None
    assert 1638953588 == event.created_at.timestamp()


def test_the_documented_chat_event_types_its_decimal_timestamps():
    """chat.snoozed, as documented: decimal-string timestamps and ids of agents come out typed."""
    path = DOCS / "webhooks__chat.snoozed__delivery__event-types-page.json"

    event = delivered(documented(path)[0])

    assert isinstance(event.data, ChatEventData)
    assert (2924,) == event.data.communicated_agent_ids
    assert "snoozed_until" == event.data.changed
    assert event.data.chat.snoozed_until is not None
    assert 1606155714 == event.data.chat.snoozed_until.timestamp()
    assert 89 == event.data.chat.application_id


def test_the_documented_customer_event_keeps_its_custom_data():
    """customer.email_updated, as documented: a flat customer with customData as an object."""
    path = DOCS / "webhooks__customer.email_updated__delivery__customer-webhooks-page.json"

    event = delivered(documented(path)[0])

    assert isinstance(event.data, CustomerEventData)
    assert (8745474, "example_2924", False) == (
        event.data.id,
        event.data.user_id,
        event.data.unsubscribed,
    )
    assert "PotentialChurn_premium_seg1" == event.data.custom_data["segment"]


def test_the_documented_delivery_headers_name_the_signature_header_we_read():
    """The documented headers carry X-HelpCrunch-Signature; its example value is no valid
    signature (not hex, and no body was given for it), and is refused as such."""
    headers = json.loads((DOCS / "webhooks__signature__delivery__headers-example.json").read_text())
    documented_headers = {k.lower(): v for k, v in headers["body"]["headers"].items()}
    signature = documented_headers[SIGNATURE_HEADER.lower()]
    body = json.dumps(COMPLETE["body"]).encode()

    with pytest.raises(WebhookVerificationError) as info:
        parse_event(body, signature, signing_key=KEY)

    assert 40 == len(signature)
    assert "signature" == info.value.reason
