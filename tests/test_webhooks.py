"""Webhooks: signature check, every documented event and shape, hostile bodies, de-duplication."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
from collections.abc import Iterator, MutableMapping
from datetime import datetime, timezone
from typing import Any

import anyio
import httpx
import pytest
import trio.testing
import uvicorn

import helpcrunch_async as hc
from helpcrunch_async.webhooks import (
    CHAT_EVENTS,
    CUSTOMER_EVENTS,
    DEFAULT_BODY_TIMEOUT,
    MAX_BODY_SIZE,
    MAX_JSON_DEPTH,
    MESSAGE_EVENTS,
    SIGNATURE_HEADER,
    ChatEventData,
    CustomerEventData,
    EventDeduplicator,
    MessageEventData,
    WebhookEndpoint,
    WebhookEvent,
    WebhookVerificationError,
    parse_event,
    sign,
)

KEY = "whkey-test-DO-NOT-LEAK-91ab"
EVENT_ID = "8c1f0a52-4d5e-4b7a-9f3e-1e2d3c4b5a69"

CUSTOMER = {"id": 77, "name": "Bob", "email": "bob@example.com", "userId": "u-77"}
AGENT = {"id": 12, "name": "Ann", "email": "ann@example.com", "role": "superviser"}
# A chat in the webhooks' own shape: decimal-string timestamps, communicatedAgents as ids.
CHAT_DATA: dict[str, Any] = {
    "id": 5215752,
    "status": "on hold",
    "closedBy": None,
    "closedAt": None,
    "createdAt": "1607542030.713",
    "lastMessageAt": "1607542090.250",
    "snoozedUntil": None,
    "rating": None,
    "customer": CUSTOMER,
    "department": {"id": 3, "name": "Support"},
    "assignee": AGENT,
    "communicatedAgents": [12, 14],
    "applicationId": 1,
}
MESSAGE_DATA: dict[str, Any] = {
    "chat_id": 5215752,
    "agent": None,
    "customer": CUSTOMER,
    "message": {
        "id": 991,
        "text": "I need a refund",
        "createdAt": "1607542030.713",
        "updatedAt": "1607542031.000",
        "read": False,
        "edited": 0,
        "applicationId": 1,
        "broadcastType": None,
    },
}
CUSTOMER_DATA: dict[str, Any] = {
    **CUSTOMER,
    "unsubscribed": "false",
    "customData": {"plan": "pro"},
    "tags": [{"name": "vip"}],
}


def envelope(event: str, data: Any, **extra: Any) -> dict[str, Any]:
    """A delivery envelope as documented: a first delivery (``attempts`` 0)."""
    payload = {
        "id": EVENT_ID,
        "event": event,
        "eventData": data,
        "attempts": 0,
        "lastAttemptAt": 1607542031,
        "createdAt": 1607542030,
    }
    payload.update(extra)
    return payload


def signed(payload: Any, key: str = KEY) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    return body, sign(body, key)


def parse(payload: Any) -> WebhookEvent:
    return parse_event(*signed(payload), signing_key=KEY)


def refused(body: bytes, signature: str | None, reason: str) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as info:
        parse_event(body, signature, signing_key=KEY)
    assert reason == info.value.reason
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    return info.value


# --- the envelope and every documented event -----------------------------------------------


def test_envelope_fields_are_typed():
    """id, type, attempts and both timestamps come out typed; the envelope stays in raw."""
    event = parse(envelope("chat.new", CHAT_DATA, attempts=3, lastAttemptAt="1607542090.5"))

    assert EVENT_ID == event.id
    assert "chat.new" == event.type
    assert 3 == event.attempts
    assert event.is_redelivery
    assert datetime(2020, 12, 9, 19, 27, 10, tzinfo=timezone.utc) == event.created_at
    assert datetime(2020, 12, 9, 19, 28, 10, 500000, tzinfo=timezone.utc) == event.last_attempt_at
    assert "chat.new" == event.raw["event"]


def test_first_delivery_has_attempts_0_as_documented_and_is_not_a_redelivery():
    """attempts 0 (HelpCrunch's documented first delivery) is accepted; absent means 0."""
    payload = envelope("chat.new", CHAT_DATA)
    del payload["attempts"]

    assert 0 == parse(payload).attempts
    assert 0 == parse(envelope("chat.new", CHAT_DATA)).attempts
    assert not parse(envelope("chat.new", CHAT_DATA)).is_redelivery
    assert parse(envelope("chat.new", CHAT_DATA, attempts=1)).is_redelivery


@pytest.mark.parametrize("event_type", sorted(CHAT_EVENTS))
def test_every_chat_event_carries_the_chat_and_what_changed(event_type):
    """Each documented chat.* event gives ChatEventData with the id and the changed field."""
    data = parse(envelope(event_type, CHAT_DATA)).data

    assert isinstance(data, ChatEventData)
    assert 5215752 == data.chat_id == data.chat.id
    assert CHAT_EVENTS[event_type] == data.changed
    assert hc.ChatStatus.ON_HOLD is data.chat.status
    assert (12, 14) == data.communicated_agent_ids
    created = datetime(2020, 12, 9, 19, 27, 10, 713000, tzinfo=timezone.utc)
    assert created == data.chat.created_at
    assert hc.Customer(77, "Bob", "bob@example.com", "u-77") == data.chat.customer
    assert hc.Department(3, "Support") == data.chat.department
    assert hc.AgentRole.SUPERVISER == (data.chat.assignee.role if data.chat.assignee else None)
    assert 1 == data.chat.application_id


def test_chat_event_changed_fields_name_real_attributes():
    """Every 'changed' name is an attribute of the event's Chat."""
    for changed in filter(None, CHAT_EVENTS.values()):
        assert hasattr(hc.Chat(id=1), changed)


@pytest.mark.parametrize(
    ("extra", "check"),
    [
        (
            {"department": 3, "assignee": "12"},
            lambda d: (3, 12) == (d.chat.department.id, d.chat.assignee.id),
        ),
        (
            {"department": None, "assignee": None},
            lambda d: (None, None) == (d.chat.department, d.chat.assignee),
        ),
        ({"createdAt": 1607542030}, lambda d: 1607542030 == d.chat.created_at.timestamp()),
        ({"createdAt": "1607542030"}, lambda d: 1607542030 == d.chat.created_at.timestamp()),
        (
            {"snoozedUntil": "1607600000.000"},
            lambda d: 1607600000 == d.chat.snoozed_until.timestamp(),
        ),
        ({"communicatedAgents": [{"id": 5}, 6]}, lambda d: (5, 6) == d.communicated_agent_ids),
        ({"communicatedAgents": None}, lambda d: () == d.communicated_agent_ids),
        ({"status": "brand-new-status"}, lambda d: "brand-new-status" == d.chat.status),
        ({"rating": "great", "closedBy": "customer"}, lambda d: "great" == d.chat.rating),
        ({"id": "5215752"}, lambda d: 5215752 == d.chat_id),
    ],
)
def test_chat_event_accepts_every_payload_shape(extra, check):
    """Ids or objects, int or string timestamps, unknown statuses: all accepted."""
    assert check(parse(envelope("chat.status_updated", {**CHAT_DATA, **extra})).data)


def test_chat_event_with_only_an_id():
    """Every field but the id may be missing."""
    data = parse(envelope("chat.closed", {"id": 9})).data

    assert ChatEventData(chat_id=9, chat=hc.Chat(id=9), changed="status") == data


@pytest.mark.parametrize("event_type", sorted(MESSAGE_EVENTS))
def test_every_message_event_carries_chat_message_and_author(event_type):
    """Each documented message.* event gives MessageEventData; an agent's event names the agent."""
    by_agent = event_type.endswith(".agent") or event_type == "message.private"
    payload = {**MESSAGE_DATA, "agent": AGENT if by_agent else None}
    data = parse(envelope(event_type, payload)).data

    assert isinstance(data, MessageEventData)
    assert 5215752 == data.chat_id
    assert data.message is not None
    assert (991, "I need a refund") == (data.message.id, data.message.text)
    assert (False, False) == (data.message.read, data.message.edited)
    assert datetime(2020, 12, 9, 19, 27, 11, tzinfo=timezone.utc) == data.message.updated_at
    assert (12 if by_agent else None) == (data.agent.id if data.agent else None)
    assert 77 == (data.customer.id if data.customer else None)


def test_message_event_accepts_camel_case_chat_id_and_agent_id():
    """chatId (the rest of the API's spelling) and an agent given by id are accepted."""
    payload = {"chatId": 4, "agent": 12, "message": {"id": 1, "text": "hi"}}
    data = parse(envelope("message.chat.agent", payload)).data

    assert isinstance(data, MessageEventData)
    assert (4, 12) == (data.chat_id, data.agent.id if data.agent else None)


@pytest.mark.parametrize("event_type", sorted(CUSTOMER_EVENTS))
def test_every_customer_event_carries_the_customer(event_type):
    """Each documented customer.* event gives CustomerEventData; extra fields stay in raw."""
    data = parse(envelope(event_type, CUSTOMER_DATA)).data

    assert isinstance(data, CustomerEventData)
    assert (77, "Bob", "bob@example.com", "u-77") == (data.id, data.name, data.email, data.user_id)
    assert data.unsubscribed is False
    assert {"plan": "pro"} == data.custom_data
    assert [{"name": "vip"}] == data.raw["tags"]


def test_unknown_event_type_is_kept_with_its_data():
    """A type the SDK does not know is parsed, not refused; its data is the object, read-only."""
    event = parse(envelope("ticket.escalated", {"ticket": 5, "level": [1, 2]}))

    assert "ticket.escalated" == event.type
    assert {"ticket": 5, "level": [1, 2]} == dict(event.data)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        event.data["ticket"] = 6  # type: ignore[index]


def test_unknown_event_without_data_has_empty_data():
    """An unknown event with no eventData has an empty mapping."""
    payload = envelope("ping", None)

    assert {} == dict(parse(payload).data)  # type: ignore[arg-type]


# --- signatures ----------------------------------------------------------------------------


def test_signature_is_lowercase_hex_hmac_sha1():
    """sign() is RFC 2104 HMAC-SHA1 in lowercase hex (a known test vector)."""
    # RFC 2202 test case 2.
    assert "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79" == sign(
        b"what do ya want for nothing?", "Jefe"
    )


def test_uppercase_hex_signature_is_accepted():
    """Hex is case-insensitive: an uppercase signature of the right digest verifies."""
    body, signature = signed(envelope("chat.new", CHAT_DATA))

    assert EVENT_ID == parse_event(body, signature.upper(), signing_key=KEY).id


def test_tampered_body_is_refused():
    """One changed byte after signing fails the check."""
    body, signature = signed(envelope("chat.new", CHAT_DATA))
    tampered = body.replace(b"5215752", b"5215753")

    refused(tampered, signature, "signature")


def test_wrong_key_is_refused():
    """A body signed with another key fails the check."""
    body, signature = signed(envelope("chat.new", CHAT_DATA), key="another-key")

    refused(body, signature, "signature")


@pytest.mark.parametrize(
    "change", [lambda s: s[:-1], lambda s: s[:1], lambda s: s + "0", lambda s: s + s]
)
def test_a_signature_must_match_whole(change):
    """The right signature cut short or with more after it is refused: no prefix match."""
    body, signature = signed(envelope("chat.new", CHAT_DATA))

    error = refused(body, change(signature), "signature")
    assert (
        f"{SIGNATURE_HEADER} does not match the body: not signed with this key, or tampered with"
        == str(error)
    )


def test_a_signature_that_is_not_text_a_header_can_hold_is_refused():
    """Lone surrogates (not encodable) in the signature: refused, never a UnicodeEncodeError."""
    body, _ = signed(envelope("chat.new", CHAT_DATA))

    refused(body, "\ud800" * 40, "signature")


@pytest.mark.parametrize("signature", [None, "", "   "])
def test_missing_signature_is_refused(signature):
    """No header (or an empty one) is refused before anything else."""
    body, _ = signed(envelope("chat.new", CHAT_DATA))

    error = refused(body, signature, "signature")
    assert f"no {SIGNATURE_HEADER} header" == str(error)


@pytest.mark.parametrize(
    "signature",
    ["sha1=abc", "ZmFrZS1zaWduYXR1cmU=", "é" * 40, "0" * 40, "0" * 4000],
)
def test_malformed_signatures_are_refused(signature):
    """The docs' non-hex example, non-ASCII, wrong length: refused, never a crash."""
    body, _ = signed(envelope("chat.new", CHAT_DATA))

    refused(body, signature, "signature")


def test_signature_is_checked_before_the_body_is_parsed():
    """An unsigned non-JSON body is a signature failure, not a parse failure."""
    refused(b"{not json", "0" * 40, "signature")


def test_replayed_delivery_parses_to_the_same_event_id():
    """A redelivery verifies on its own and keeps the event id, with attempts counted up."""
    first = parse(envelope("chat.new", CHAT_DATA))
    again = parse(envelope("chat.new", CHAT_DATA, attempts=1))

    assert first.id == again.id
    assert (0, 1) == (first.attempts, again.attempts)
    assert first.data == again.data


# --- hostile and malformed bodies -------------------------------------------------------------


def test_body_over_the_cap_is_refused_unhashed():
    """A body over MAX_BODY_SIZE is refused as such, whatever its signature."""
    error = refused(b" " * (MAX_BODY_SIZE + 1), "0" * 40, "size")

    assert f"body of {MAX_BODY_SIZE + 1} bytes is over the {MAX_BODY_SIZE}-byte cap" == str(error)


def test_body_of_exactly_the_cap_is_accepted():
    """A signed envelope of exactly MAX_BODY_SIZE bytes (padded with spaces) is an event."""
    body = json.dumps(envelope("chat.new", CHAT_DATA)).encode()
    body += b" " * (MAX_BODY_SIZE - len(body))

    assert EVENT_ID == parse_event(body, sign(body, KEY), signing_key=KEY).id


def nested(depth: int) -> bytes:
    """An envelope nesting ``depth`` objects deep in all (itself included)."""
    inner = depth - 1
    data = b'{"a": ' * inner + b"1" + b"}" * inner
    return b'{"id": "x", "event": "e", "eventData": ' + data + b"}"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deep_json_is_refused(depth):
    """Nesting past MAX_JSON_DEPTH, even far past the recursion limit, is refused cleanly."""
    body = nested(depth)

    refused(body, sign(body, KEY), "envelope")


def test_json_at_the_depth_cap_is_accepted():
    """Nesting right at the cap parses."""
    body = nested(MAX_JSON_DEPTH)

    assert "e" == parse_event(body, sign(body, KEY), signing_key=KEY).type


REFUSED = "signed body is refused: "
INVALID = "signed body is not a valid event envelope: "
MESSAGE_WITHOUT_CHAT_ID = {k: v for k, v in MESSAGE_DATA.items() if k != "chat_id"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", REFUSED + "answer is not JSON: '{not json'"),
        (b"\xff\xfe\x00", REFUSED + "answer is not JSON: '\ufffd\ufffd\\x00'"),
        (b"", REFUSED + "answer is not JSON: ''"),
        (b"[1, 2]", INVALID + "envelope: expected an object, got list"),
        (b'"chat.new"', INVALID + "envelope: expected an object, got str"),
        (b"null", INVALID + "envelope: expected an object, got NoneType"),
        (
            b'{"id": "x", "event": "chat.new", "eventData": {"id": ' + b"9" * 5000 + b"}}",
            REFUSED + "answer holds an integer longer than 64 digits",
        ),
        (envelope("chat.new", CHAT_DATA, id=None), INVALID + "event.id: missing"),
        (envelope("chat.new", CHAT_DATA, id=""), INVALID + "event.id: missing"),
        (
            envelope("chat.new", CHAT_DATA, id=["x"]),
            INVALID + "event.id: expected a string, got list",
        ),
        (envelope("", CHAT_DATA), INVALID + "event.event: missing"),
        (
            {**envelope("chat.new", CHAT_DATA), "event": ["chat.new"]},
            INVALID + "event.event: expected a string, got list",
        ),
        (
            envelope("chat.new", CHAT_DATA, attempts="many"),
            INVALID + "event.attempts: expected an integer, got 'many'",
        ),
        (envelope("chat.new", CHAT_DATA, attempts=-1), INVALID + "event.attempts: -1 is below 0"),
        (
            envelope("chat.new", CHAT_DATA, lastAttemptAt="now"),
            INVALID + "event.lastAttemptAt: expected a timestamp, got 'now'",
        ),
        (
            envelope("chat.new", CHAT_DATA, createdAt="yesterday"),
            INVALID + "event.createdAt: expected a timestamp, got 'yesterday'",
        ),
        (envelope("chat.new", [CHAT_DATA]), INVALID + "eventData: expected an object, got list"),
        (envelope("chat.new", {"status": "new"}), INVALID + "chat.id: missing"),
        (
            envelope("chat.new", {**CHAT_DATA, "customer": "Bob"}),
            INVALID + "chat.customer: expected a customer object or id, got str",
        ),
        (
            envelope("chat.new", {**CHAT_DATA, "communicatedAgents": "12"}),
            INVALID + "chat.communicatedAgents: expected a list of ids, got str",
        ),
        (
            envelope("message.private", "I need a refund"),
            INVALID + "eventData: expected an object, got str",
        ),
        (
            envelope("message.chat.agent", {"message": {"id": 1}}),
            INVALID + "event.chat_id: missing",
        ),
        (
            envelope("message.chat.agent", {**MESSAGE_DATA, "chat_id": "five"}),
            INVALID + "event.chat_id: expected an integer, got 'five'",
        ),
        (
            envelope("message.chat.agent", {**MESSAGE_WITHOUT_CHAT_ID, "chatId": "five"}),
            INVALID + "event.chatId: expected an integer, got 'five'",
        ),
        (
            envelope("message.chat.agent", {**MESSAGE_DATA, "message": [1]}),
            INVALID + "event.message: expected a message object or id, got list",
        ),
        (envelope("customer.new", {"name": "no id"}), INVALID + "customer.id: missing"),
        (
            envelope("customer.new", {**CUSTOMER_DATA, "id": "seventy"}),
            INVALID + "customer.id: expected an integer, got 'seventy'",
        ),
        (
            envelope("customer.new", {**CUSTOMER_DATA, "name": ["Bob"]}),
            INVALID + "customer.name: expected a string, got list",
        ),
        (envelope("customer.new", "Bob"), INVALID + "eventData: expected an object, got str"),
        (envelope("ticket.escalated", [1, 2]), INVALID + "eventData: expected an object, got list"),
    ],
)
def test_signed_garbage_is_an_envelope_error(body, message):
    """Signed but invalid: WebhookVerificationError naming the field at fault and what it held."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    error = refused(body, sign(body, KEY), "envelope")

    assert message == str(error)


def test_random_signed_bytes_never_escape_as_raw_exceptions():
    """Fuzz: mutated valid bodies either parse or raise WebhookVerificationError."""
    rng = random.Random(16)  # noqa: S311 - reproducible fuzzing, not secrets
    base = bytearray(json.dumps(envelope("message.private", MESSAGE_DATA)).encode())
    for _ in range(500):
        body = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.choice(b'{}[]",:0123456789aeflnrstu\\ ')
        with contextlib.suppress(WebhookVerificationError):
            parse_event(bytes(body), sign(bytes(body), KEY), signing_key=KEY)


@pytest.mark.parametrize(
    ("body", "key", "error", "message"),
    [
        ("a str body", KEY, TypeError, "body must be bytes, not str"),
        (b"{}", "", ValueError, "signing_key is empty: copy the HTTP Webhook Signing Key"),
        (b"{}", "   ", ValueError, "signing_key is empty: copy the HTTP Webhook Signing Key"),
        (b"{}", b"bytes-key", TypeError, "signing_key must be a str, not bytes"),
        (b"{}", None, TypeError, "signing_key must be a str, not NoneType"),
    ],
)
def test_bad_arguments_are_caller_errors(body, key, error, message):
    """A non-bytes body or a bad key is the caller's bug: TypeError/ValueError saying which."""
    with pytest.raises(error) as caught:
        parse_event(body, "0" * 40, signing_key=key)

    assert str(caught.value).startswith(message)


def test_verification_error_is_a_helpcrunch_error_exported_at_the_top():
    """WebhookVerificationError is in the hierarchy and exported by the package."""
    assert issubclass(hc.WebhookVerificationError, hc.HelpCrunchError)
    assert hc.WebhookVerificationError is WebhookVerificationError


# --- de-duplication ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_dedup_claims_an_id_once_until_released():
    """claim() is True once per id; release() lets the next redelivery through."""
    dedup = EventDeduplicator()

    assert dedup.claim("a")
    assert not dedup.claim("a")
    assert "a" in dedup
    dedup.release("a")
    assert "a" not in dedup
    assert dedup.claim("a")
    dedup.release("never-claimed")


def test_dedup_forgets_the_oldest_past_its_size():
    """At most max_events ids are held; the oldest goes first."""
    dedup = EventDeduplicator(max_events=2)
    for event_id in ("a", "b", "c"):
        dedup.claim(event_id)

    assert 2 == len(dedup)
    assert "a" not in dedup
    assert dedup.claim("a")
    assert not dedup.claim("c")


def test_dedup_forgets_ids_after_the_ttl():
    """An id is held for ttl seconds, then claimable again."""
    clock = FakeClock()
    dedup = EventDeduplicator(ttl=10, clock=clock)
    dedup.claim("a")
    clock.now += 5
    dedup.claim("b")

    clock.now += 5
    assert "a" not in dedup
    assert "b" in dedup
    assert 1 == len(dedup)
    assert dedup.claim("a")


def test_dedup_claims_an_expired_id_again_at_once():
    """The first claim of a redelivery after the ttl succeeds, with nothing read before it."""
    clock = FakeClock()
    dedup = EventDeduplicator(ttl=10, clock=clock)
    dedup.claim("a")

    clock.now += 10
    assert dedup.claim("a")
    assert not dedup.claim("a")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_events": 0}, ValueError),
        ({"max_events": 1.5}, TypeError),
        ({"max_events": True}, TypeError),
        ({"ttl": 0}, ValueError),
        ({"ttl": "1"}, TypeError),
    ],
)
def test_dedup_settings_are_validated(kwargs, error):
    """Bad sizes and ttls are refused at construction."""
    with pytest.raises(error):
        EventDeduplicator(**kwargs)


def test_dedup_rejects_non_string_ids():
    """Ids are strings: an int is a caller error, not a silent miss."""
    with pytest.raises(TypeError, match=r"^event_id must be a str, not int$"):
        EventDeduplicator().claim(5)  # type: ignore[arg-type]


def test_dedup_of_one_event_remembers_the_latest():
    """max_events=1 is allowed: the latest id is held, the one before it forgotten."""
    dedup = EventDeduplicator(max_events=1)
    dedup.claim("a")
    dedup.claim("b")

    assert ["b"] == [i for i in ("a", "b") if i in dedup]


# --- the ASGI endpoint ------------------------------------------------------------------------


class Recorder:
    """A handler that records events and fails the first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.events: list[WebhookEvent] = []
        self.failures = failures

    async def __call__(self, event: WebhookEvent) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("handler down")
        self.events.append(event)


def endpoint_client(endpoint: WebhookEndpoint) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=endpoint), base_url="http://bot")


async def deliver(client: httpx.AsyncClient, payload: Any, key: str = KEY) -> httpx.Response:
    body, signature = signed(payload, key)
    return await client.post("/hook", content=body, headers={SIGNATURE_HEADER: signature})


@pytest.mark.anyio
async def test_endpoint_hands_verified_events_to_the_handler(anyio_backend):
    """A signed delivery reaches the handler typed, and is answered 200."""
    recorder = Recorder()
    async with endpoint_client(WebhookEndpoint(recorder, signing_key=KEY)) as client:
        response = await deliver(client, envelope("chat.new", CHAT_DATA))

    assert 200 == response.status_code
    assert ["chat.new"] == [e.type for e in recorder.events]


@pytest.mark.anyio
async def test_endpoint_refuses_what_does_not_verify(anyio_backend):
    """401 for a wrong key, tampering or no signature; 400 for a bad envelope; 405 for GET."""
    recorder = Recorder()
    async with endpoint_client(WebhookEndpoint(recorder, signing_key=KEY)) as client:
        wrong_key = await deliver(client, envelope("chat.new", CHAT_DATA), key="other")
        body, signature = signed(envelope("chat.new", CHAT_DATA))
        tampered = await client.post(
            "/hook", content=body + b" ", headers={SIGNATURE_HEADER: signature}
        )
        unsigned = await client.post("/hook", content=body)
        not_envelope = await deliver(client, ["chat.new"])
        get = await client.get("/hook")

    assert [401, 401, 401, 400, 405] == [
        r.status_code for r in (wrong_key, tampered, unsigned, not_envelope, get)
    ]
    assert "POST" == get.headers["allow"]
    assert [] == recorder.events
    assert all(KEY not in r.text for r in (wrong_key, tampered, unsigned, not_envelope))


@pytest.mark.anyio
async def test_endpoint_refuses_large_bodies_unread(anyio_backend):
    """A body over max_body_size is answered 413 without reaching the handler."""
    recorder = Recorder()
    endpoint = WebhookEndpoint(recorder, signing_key=KEY, max_body_size=100)
    async with endpoint_client(endpoint) as client:
        response = await deliver(client, envelope("chat.new", CHAT_DATA))

    assert 413 == response.status_code
    assert [] == recorder.events


@pytest.mark.anyio
async def test_endpoint_answers_500_when_the_handler_fails_then_takes_the_redelivery(
    anyio_backend, caplog
):
    """A failing handler gets a 500 (HelpCrunch redelivers); the redelivery is handled."""
    recorder = Recorder(failures=1)
    endpoint = WebhookEndpoint(recorder, signing_key=KEY, deduplicator=EventDeduplicator())
    with caplog.at_level(logging.INFO, logger="helpcrunch_async.webhooks"):
        async with endpoint_client(endpoint) as client:
            failed = await deliver(client, envelope("chat.new", CHAT_DATA))
            retried = await deliver(client, envelope("chat.new", CHAT_DATA, attempts=2))

    assert (500, 200) == (failed.status_code, retried.status_code)
    assert [2] == [e.attempts for e in recorder.events]
    assert "handler down" in caplog.text
    assert KEY not in caplog.text


@pytest.mark.anyio
async def test_endpoint_acknowledges_replays_without_handling_them_twice(anyio_backend):
    """With a deduplicator, a replayed event id is answered 200 and not handled again."""
    recorder = Recorder()
    endpoint = WebhookEndpoint(recorder, signing_key=KEY, deduplicator=EventDeduplicator())
    async with endpoint_client(endpoint) as client:
        first = await deliver(client, envelope("chat.new", CHAT_DATA))
        replay = await deliver(client, envelope("chat.new", CHAT_DATA, attempts=2))
        other = await deliver(client, envelope("chat.new", CHAT_DATA, id="another-id"))

    assert [200, 200, 200] == [r.status_code for r in (first, replay, other)]
    assert [EVENT_ID, "another-id"] == [e.id for e in recorder.events]


@pytest.mark.anyio
async def test_endpoint_without_deduplicator_hands_every_delivery_over(anyio_backend):
    """Without a deduplicator a replay reaches the handler again (the handler decides)."""
    recorder = Recorder()
    async with endpoint_client(WebhookEndpoint(recorder, signing_key=KEY)) as client:
        await deliver(client, envelope("chat.new", CHAT_DATA))
        await deliver(client, envelope("chat.new", CHAT_DATA, attempts=1))

    assert [0, 1] == [e.attempts for e in recorder.events]


def test_endpoint_hides_its_key_and_checks_its_arguments():
    """repr never shows the key; bad arguments are refused at construction."""
    endpoint = WebhookEndpoint(Recorder(), signing_key=KEY)

    assert KEY not in repr(endpoint)
    with pytest.raises(ValueError):
        WebhookEndpoint(Recorder(), signing_key="")
    with pytest.raises(TypeError):
        WebhookEndpoint("not callable", signing_key=KEY)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        WebhookEndpoint(Recorder(), signing_key=KEY, deduplicator=set())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WebhookEndpoint(Recorder(), signing_key=KEY, max_body_size=MAX_BODY_SIZE + 1)


def test_sign_and_parse_refuse_non_text_arguments():
    """sign() wants bytes; a signature that is not a str is a caller error."""
    with pytest.raises(TypeError):
        sign("text", KEY)  # type: ignore[arg-type]
    body, signature = signed(envelope("chat.new", CHAT_DATA))
    with pytest.raises(TypeError, match=r"^signature must be a str or None, not bytes$"):
        parse_event(body, signature.encode(), signing_key=KEY)  # type: ignore[arg-type]


def test_dedup_repr_shows_its_settings_and_size():
    """repr says how much it holds."""
    dedup = EventDeduplicator(max_events=5, ttl=60)
    dedup.claim("a")

    assert "EventDeduplicator(max_events=5, ttl=60.0, held=1)" == repr(dedup)


@pytest.mark.anyio
async def test_endpoint_refuses_a_declared_oversize_body_unread(anyio_backend):
    """A Content-Length over the cap is refused before the body is read."""
    recorder = Recorder()
    endpoint = WebhookEndpoint(recorder, signing_key=KEY, max_body_size=10)
    async with endpoint_client(endpoint) as client:
        response = await client.post(
            "/hook", content=b"x" * 11, headers={"content-length": "11", SIGNATURE_HEADER: "0"}
        )

    assert 413 == response.status_code


@pytest.mark.anyio
async def test_endpoint_served_alone_completes_its_lifespan(anyio_backend):
    """Served as the whole app, the endpoint answers the lifespan protocol."""
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive():
        return next(incoming)

    async def send(message):
        sent.append(message["type"])

    await WebhookEndpoint(Recorder(), signing_key=KEY)({"type": "lifespan"}, receive, send)

    assert ["lifespan.startup.complete", "lifespan.shutdown.complete"] == sent


def test_endpoint_checks_its_body_cap():
    """max_body_size is an int within (0, MAX_BODY_SIZE]."""
    with pytest.raises(TypeError):
        WebhookEndpoint(Recorder(), signing_key=KEY, max_body_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WebhookEndpoint(Recorder(), signing_key=KEY, max_body_size=0)


@pytest.mark.anyio
async def test_endpoint_closes_websockets(anyio_backend):
    """A websocket connection is closed at once: webhooks are POSTs."""
    sent: list[dict[str, Any]] = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    await WebhookEndpoint(Recorder(), signing_key=KEY)({"type": "websocket"}, receive, send)

    assert [{"type": "websocket.close", "code": 1008}] == sent


def test_a_webhook_message_of_a_non_object_is_refused_by_name():
    """Message.from_json of anything but an object is ResponseValidationError."""
    with pytest.raises(hc.ResponseValidationError) as caught:
        hc.Message.from_json(None)

    assert str(caught.value) == "expected a message object, got NoneType"


# --- the endpoint and a sender that leaves or trickles -----------------------------------------

VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)


def http_scope(content_length: int) -> dict[str, Any]:
    """The ASGI scope of a webhook POST."""
    headers = [(b"content-length", str(content_length).encode()), (b"host", b"bot")]
    return {"type": "http", "method": "POST", "path": "/hook", "headers": headers}


@pytest.mark.anyio
async def test_endpoint_takes_a_disconnect_mid_body_as_no_delivery(anyio_backend, caplog):
    """The sender leaves mid-body: no handler call, no answer, one INFO line, no traceback."""
    recorder = Recorder()
    incoming: Iterator[dict[str, Any]] = iter(
        [
            {"type": "http.request", "body": b'{"id": "', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level(logging.INFO, logger="helpcrunch_async.webhooks"):
        await WebhookEndpoint(recorder, signing_key=KEY)(http_scope(500), receive, send)

    assert ([], []) == (sent, recorder.events)
    assert ["INFO"] == [record.levelname for record in caplog.records]
    assert all(record.exc_info is None for record in caplog.records)


@VIRTUAL
async def test_endpoint_answers_408_to_a_body_trickled_past_its_deadline(anyio_backend):
    """A byte every 2 s keeps no connection for ever: past body_timeout, 408 and close."""
    recorder = Recorder()
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep(2)
        return {"type": "http.request", "body": b" ", "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    endpoint = WebhookEndpoint(recorder, signing_key=KEY, body_timeout=10.0)
    await endpoint(http_scope(100), receive, send)

    start = sent[0]
    assert 408 == start["status"]
    assert (b"connection", b"close") in start["headers"]
    assert [] == recorder.events


def test_endpoint_body_timeout_is_a_positive_number():
    """body_timeout is checked at construction; 10 s by default."""
    assert DEFAULT_BODY_TIMEOUT == WebhookEndpoint(Recorder(), signing_key=KEY).body_timeout
    with pytest.raises(ValueError, match="body_timeout"):
        WebhookEndpoint(Recorder(), signing_key=KEY, body_timeout=0)
    with pytest.raises(TypeError, match="body_timeout"):
        WebhookEndpoint(Recorder(), signing_key=KEY, body_timeout="10")  # type: ignore[arg-type]


@contextlib.contextmanager
def served(endpoint: WebhookEndpoint) -> Iterator[tuple[str, int]]:
    """Serve ``endpoint`` with uvicorn on a free loopback port, its logs going to caplog."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(endpoint, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[:2]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


class LogWatch(logging.Handler):
    """Wakes the test on the endpoint's first record, or on any warning or error (uvicorn's
    "Exception in ASGI application")."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("helpcrunch_async") or record.levelno >= logging.WARNING:
            self.seen.set()


def test_a_real_sender_leaving_mid_body_is_no_delivery_and_no_traceback(caplog):
    """Over a socket: a client cut off mid-body leaves no traceback and no handler call."""
    recorder = Recorder()
    watch = LogWatch()
    loggers = [logging.getLogger("helpcrunch_async.webhooks"), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(watch)
    try:
        with (
            caplog.at_level(logging.INFO),
            served(WebhookEndpoint(recorder, signing_key=KEY)) as addr,
        ):
            with socket.create_connection(addr, timeout=30) as client:
                client.sendall(
                    b'POST /hook HTTP/1.1\r\nHost: bot\r\nContent-Length: 500\r\n\r\n{"id": "'
                )
            assert watch.seen.wait(30)
    finally:
        for logger in loggers:
            logger.removeHandler(watch)

    assert [] == recorder.events
    assert all(record.levelno < logging.WARNING for record in caplog.records)
    assert all(record.exc_info is None for record in caplog.records)
    assert "cut off by its sender" in caplog.text


def test_a_real_sender_stalling_mid_body_gets_408(caplog):
    """Over a socket: a body that stops arriving is answered 408 once body_timeout passes."""
    recorder = Recorder()
    endpoint = WebhookEndpoint(recorder, signing_key=KEY, body_timeout=0.2)
    with caplog.at_level(logging.INFO), served(endpoint) as addr:
        with socket.create_connection(addr, timeout=30) as client:
            client.sendall(b"POST /hook HTTP/1.1\r\nHost: bot\r\nContent-Length: 500\r\n\r\n{")
            answer = client.recv(4096)

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert [] == recorder.events
