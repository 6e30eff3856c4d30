"""Hostile probes for secrets in tracebacks: the API key, the webhook signing key and Redis
passwords never show in a traceback rendered with its locals, nor in any error chained to it."""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from rich.console import Console
from rich.traceback import Traceback

import helpcrunch_async as hc
from helpcrunch_async.redis import RedisRateLimiter, client_from_url
from helpcrunch_async.webhooks import (
    SIGNATURE_HEADER,
    EventDeduplicator,
    WebhookEndpoint,
    parse_event,
    sign,
)
from tests.conftest import API_KEY, chat_payload

SIGNING_KEY = "whsec-PROBE-7d1c0e"
PASSWORD = "redis-PROBE-pw-4a9b"


def rendered_with_locals(exc: BaseException) -> str:
    """The traceback as the standard library shows it with ``capture_locals``."""
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


def rendered_by_rich(exc: BaseException) -> str:
    """The traceback as rich shows it with its locals (the CLI's renderer, and many apps')."""
    console = Console(file=io.StringIO(), width=300, color_system=None)
    console.print(Traceback.from_exception(type(exc), exc, exc.__traceback__, show_locals=True))
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()


def _repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<repr failed: {type(exc).__name__}>"


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every error chained to it, suppressed contexts included."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        pending += [current.__cause__, current.__context__]
    return found


def probe(exc: BaseException) -> str:
    """Everything a hostile reader of ``exc`` finds: texts, attributes and the repr of every
    local of every frame of every traceback along the whole chain."""
    texts = []
    for error in chain(exc):
        texts += [str(error), repr(error), _repr(getattr(error, "__dict__", {}))]
        tb = error.__traceback__
        while tb is not None:
            texts += [f"{k}={_repr(v)}" for k, v in tb.tb_frame.f_locals.items()]
            tb = tb.tb_next
    return "\n".join(texts)


def found_in(exc: BaseException, *secrets: str) -> list[str]:
    """The secrets any renderer or probe finds in ``exc``: an empty list, always."""
    shown = rendered_with_locals(exc) + rendered_by_rich(exc) + probe(exc)
    return [secret for secret in secrets if secret in shown]


def raised(call: Callable[[], Any]) -> BaseException:
    """What ``call`` raised, its traceback starting at the SDK's first frame.

    The test's own frames hold the secret it passes in (as the caller's frames would in an
    app): the probe is about the frames of the SDK, and of what it calls.
    """
    with pytest.raises(Exception) as info:
        call()
    return from_the_sdk(info.value)


def from_the_sdk(error: BaseException) -> BaseException:
    tb = error.__traceback__
    while tb is not None and not tb.tb_frame.f_globals["__name__"].startswith("helpcrunch_async"):
        tb = tb.tb_next
    assert tb is not None, "raised outside the SDK"
    return error.with_traceback(tb)


# --- the webhook signing key -------------------------------------------------------------------

DELIVERY = {
    "id": "e-1",
    "event": "chat.new",
    "eventData": {"id": 5, "status": "new"},
    "attempts": 0,
}
BODY = json.dumps(DELIVERY).encode()


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        (BODY + b" ", sign(BODY, SIGNING_KEY)),  # tampered: the right signature is known
        (BODY, None),
        (BODY, "0" * 40),
        (b"[1]", sign(b"[1]", SIGNING_KEY)),  # signed, but no envelope
        (b"{" * 100 + b"}" * 100, sign(b"{" * 100 + b"}" * 100, SIGNING_KEY)),
        (b"x" * (2**20 + 1), "0" * 40),
        ("not bytes", "0" * 40),
        (BODY, b"bytes"),
    ],
)
def test_the_signing_key_is_in_no_traceback_of_a_refused_delivery(body, signature):
    """Every refusal of parse_event, rendered with locals: no key, no valid signature."""
    error = raised(lambda: parse_event(body, signature, signing_key=SIGNING_KEY))
    # The signature the body should have had lets anyone replay it: it is no local either.
    expected = sign(bytes(body), SIGNING_KEY) if isinstance(body, bytes) else SIGNING_KEY
    secrets = [SIGNING_KEY] if expected == signature else [SIGNING_KEY, expected]

    assert [] == found_in(error, *secrets)
    assert "Secret(<redacted>)" in rendered_with_locals(error)  # locals were captured


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_body_size": 0},
        {"body_timeout": -1.0},
        {"body_timeout": 10**400},
        {"deduplicator": set()},
        {"handler": "not callable"},
    ],
)
def test_the_signing_key_is_in_no_traceback_of_a_bad_endpoint(kwargs):
    """A WebhookEndpoint refused at construction shows no key in its frames."""
    kwargs.setdefault("handler", print)
    error = raised(lambda: WebhookEndpoint(signing_key=SIGNING_KEY, **kwargs))

    assert [] == found_in(error, SIGNING_KEY)


def test_the_signing_key_is_in_no_traceback_of_sign():
    """sign() with a body that is no bytes shows no key."""
    error = raised(lambda: sign("text", SIGNING_KEY))  # type: ignore[arg-type]

    assert [] == found_in(error, SIGNING_KEY)


@pytest.mark.anyio
async def test_the_signing_key_is_in_no_logged_traceback_of_a_failing_handler(
    anyio_backend, caplog
):
    """The handler's failure, logged with its traceback, shows no key in any frame."""

    async def handler(_: object) -> None:
        raise RuntimeError("handler down")

    endpoint = WebhookEndpoint(handler, signing_key=SIGNING_KEY, deduplicator=EventDeduplicator())
    transport = httpx.ASGITransport(app=endpoint)
    with caplog.at_level(logging.ERROR, logger="helpcrunch_async.webhooks"):
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            response = await client.post(
                "/hook", content=BODY, headers={SIGNATURE_HEADER: sign(BODY, SIGNING_KEY)}
            )

    errors = [r.exc_info[1] for r in caplog.records if r.exc_info and r.exc_info[1]]
    assert 500 == response.status_code
    assert 1 == len(errors)
    assert [] == found_in(errors[0], SIGNING_KEY)


# --- Redis passwords ----------------------------------------------------------------------------

MALFORMED_URLS = [
    f"redis://user:{PASSWORD}@host:notaport/0",
    f"redis://user:{PASSWORD}@host:6379/0?socket_timeout=abc",
    f"redis://user:{PASSWORD}@[::1/0",
    f"redis://user:{PASSWORD}/x@host:6379/0",  # a "/" in it: urllib reads a port
    f"redis+sentinel://user:{PASSWORD}@host:26379",
    f"redis+sentinel://user:{PASSWORD}@host/svc",
    f"redis+sentinel://user:{PASSWORD}@h:1/svc?ssl=1",
    f"rediss+sentinel://:{PASSWORD}@h:1,h2:x/svc",
    f"redis+cluster://user:{PASSWORD}@host:7000/3",
    f"redis+mesh://user:{PASSWORD}@host",
    f"user:{PASSWORD}@host://x",  # what precedes :// is no scheme to echo
    f"redis//user:{PASSWORD}@host",
]


@pytest.mark.parametrize("url", MALFORMED_URLS)
@pytest.mark.parametrize("build", [client_from_url, RedisRateLimiter.from_url])
def test_a_redis_password_is_in_no_traceback_of_a_malformed_url(url, build):
    """A malformed URL is a ValueError; rendered with locals, it shows no password."""
    error = raised(lambda: build(url))

    assert isinstance(error, ValueError)
    assert [] == found_in(error, PASSWORD)
    assert not [e for e in chain(error) if type(e).__module__.startswith(("redis", "urllib"))]


def test_a_redis_password_is_in_no_traceback_of_an_unreachable_cluster(free_port):
    """A cluster that cannot be reached: LimiterUnavailableError, no password, nothing chained."""
    url = f"redis+cluster://user:{PASSWORD}@127.0.0.1:{free_port}"

    error = raised(lambda: RedisRateLimiter.from_url(url))

    assert isinstance(error, hc.LimiterUnavailableError)
    assert [] == found_in(error, PASSWORD)
    assert [error] == chain(error)


@pytest.fixture
def free_port() -> int:
    from tests.redis_server import free_port as port  # noqa: PLC0415 - a closed port

    return port()


@pytest.mark.redis
@pytest.mark.anyio
async def test_a_refused_redis_password_is_in_no_traceback_of_a_call(
    anyio_backend, redis_url, make_client, respx_status
):
    """Redis refusing the password: LimiterUnavailableError, with no redis-py error chained
    and no password in any frame."""
    url = redis_url.replace("redis://", f"redis://nobody:{PASSWORD}@", 1)
    limiter = RedisRateLimiter.from_url(url)
    try:
        async with make_client(rate_limit=limiter) as client:
            with pytest.raises(hc.LimiterUnavailableError) as info:
                await client.chats.update_status(1, "closed")
    finally:
        await limiter.aclose()

    error = from_the_sdk(info.value)
    assert [] == found_in(error, PASSWORD)
    assert not [e for e in chain(error) if type(e).__module__.startswith("redis")]


@pytest.fixture
def respx_status(api: Any) -> None:
    """The API answers status updates (never reached: the limiter fails first)."""
    api.put("/chats/status").respond(200, json=chat_payload(1))


# --- the API key --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_api_key_is_in_no_traceback_of_a_refused_call(anyio_backend, client, api):
    """A 401 and a closed client, rendered with locals: no key in any frame."""
    api.put("/chats/status").respond(401, json={"errors": [{"code": "invalid_token"}]})

    with pytest.raises(hc.AuthenticationError) as refused:
        await client.chats.update_status(1, "closed")
    await client.aclose()
    with pytest.raises(hc.ClientClosedError) as closed:
        await client.chats.update_status(1, "closed")

    assert [] == found_in(from_the_sdk(refused.value), API_KEY)
    assert [] == found_in(from_the_sdk(closed.value), API_KEY)
