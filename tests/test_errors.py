"""Error answers become the right exception, whatever style the body is in."""

from __future__ import annotations

import email.utils

import httpx
import pytest

import helpcrunch_async as hc
from helpcrunch_async._errors import error_from_response, error_from_transport, parse_retry_after


def answer(status: int, body: object = None, **kwargs: object) -> httpx.Response:
    request = httpx.Request("PUT", "https://api.helpcrunch.test/v1/chats/status")
    if body is None:
        return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]
    if isinstance(body, bytes | str):
        return httpx.Response(status, content=body, request=request, **kwargs)  # type: ignore[arg-type]
    return httpx.Response(status, json=body, request=request, **kwargs)  # type: ignore[arg-type]


def test_hierarchy_has_one_root():
    """Every SDK error is a HelpCrunchError; the tree is the documented one."""
    assert issubclass(hc.APIError, hc.HelpCrunchError)
    for cls in (
        hc.BadRequestError,
        hc.AuthenticationError,
        hc.NotFoundError,
        hc.RateLimitError,
        hc.ServerError,
    ):
        assert issubclass(cls, hc.APIError)
    assert issubclass(hc.APITimeoutError, hc.APIConnectionError)
    assert issubclass(hc.APIConnectionError, hc.HelpCrunchError)
    assert issubclass(hc.ResponseValidationError, hc.HelpCrunchError)


@pytest.mark.parametrize(
    ("status", "code", "message", "cls", "text"),
    [
        (
            400,
            "invalid_chat_value",
            "status value is invalid",
            hc.BadRequestError,
            "HTTP 400 Bad Request: invalid_chat_value: status value is invalid",
        ),
        (
            401,
            "invalid_token",
            "Invalid token",
            hc.AuthenticationError,
            "HTTP 401 Unauthorized: invalid_token: Invalid token",
        ),
        (
            404,
            "chat_not_found",
            "Chat is missing",
            hc.NotFoundError,
            "HTTP 404 Not Found: chat_not_found: Chat is missing",
        ),
        (
            429,
            "too_many_requests",
            "You have exceeded",
            hc.RateLimitError,
            "HTTP 429 Too Many Requests: too_many_requests: You have exceeded",
        ),
        (
            403,
            "forbidden",
            "no",
            hc.APIError,
            "HTTP 403 Forbidden: forbidden: no",
        ),
    ],
)
def test_older_style_single_entry(status, code, message, cls, text):
    """The older style: one entry; class by status, details parsed, all shown in str()."""
    response = answer(status, {"errors": [{"code": code, "message": message}]})

    error = error_from_response(response)

    assert cls is type(error)
    assert status == error.status_code
    assert [hc.ErrorDetail(code, message)] == error.errors
    assert text == str(error)
    assert response is error.response


@pytest.mark.parametrize(
    ("status", "cls", "codes"),
    [
        (401, hc.AuthenticationError, ["invalid_request", "unauthorized"]),
        (404, hc.NotFoundError, ["invalid_request", "not_found"]),
        (404, hc.NotFoundError, ["invalid_request", "not_fount"]),
        (429, hc.RateLimitError, ["invalid_request", "too_many_requests"]),
        (400, hc.BadRequestError, ["invalid_request", "customer", "filter[0].field"]),
    ],
)
def test_newer_style_generic_entry_first(status, cls, codes):
    """The newer style: a generic entry, then specific ones (typos and field paths too)."""
    body = {"errors": [{"code": c, "message": f"about {c}"} for c in codes]}

    error = error_from_response(answer(status, body))

    assert cls is type(error)
    assert codes == error.codes
    for c in codes:
        assert f"{c}: about {c}" in str(error)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_is_server_error(status):
    """Any 5xx is a ServerError; a 499 is not."""
    assert hc.ServerError is type(error_from_response(answer(status, {"errors": []})))
    assert hc.APIError is type(error_from_response(answer(499, {"errors": []})))


@pytest.mark.parametrize(
    ("status", "body", "text"),
    [
        (400, {"errors": [{"code": "x"}]}, "HTTP 400 Bad Request: x"),
        (400, {"errors": ["boom"]}, "HTTP 400 Bad Request: boom"),
        (400, {"errors": [{"code": None, "message": "m"}]}, "HTTP 400 Bad Request: m"),
        (
            400,
            {"errors": [{"code": "a", "message": "about a"}, {"code": "b", "message": "about b"}]},
            "HTTP 400 Bad Request: a: about a; b: about b",
        ),
        (502, "<html>Bad Gateway</html>", "HTTP 502 Bad Gateway: '<html>Bad Gateway</html>'"),
        (502, "x" * 300, f"HTTP 502 Bad Gateway: {'x' * 200!r}"),
        (500, "   ", "HTTP 500 Internal Server Error"),
        (418, None, "HTTP 418 I'm a teapot"),
        (599, None, "HTTP 599 error"),  # no reason phrase
    ],
)
def test_error_messages(status, body, text):
    """An error's message: status, reason, then the details or an excerpt of a non-JSON body."""
    assert text == str(error_from_response(answer(status, body)))


@pytest.mark.parametrize(
    ("entry", "detail"),
    [
        ({"code": "c"}, hc.ErrorDetail("c", "")),
        ({"message": "m"}, hc.ErrorDetail("", "m")),
        ({"code": None, "message": None}, hc.ErrorDetail("", "")),
        ({"code": 7, "message": 8}, hc.ErrorDetail("7", "8")),
    ],
)
def test_error_detail_fields_missing_or_null_are_empty_strings(entry, detail):
    """A missing or null code or message reads as "", never as "None"."""
    assert [detail] == error_from_response(answer(400, {"errors": [entry]})).errors


@pytest.mark.parametrize(
    ("status", "cls"),
    [(502, hc.ServerError), (401, hc.AuthenticationError), (429, hc.RateLimitError)],
)
def test_non_json_body_still_gives_right_class(status, cls):
    """A proxy's HTML page is no crash: the class comes from the status, the text is shown."""
    error = error_from_response(answer(status, "<html>Bad Gateway</html>"))

    assert cls is type(error)
    assert [] == error.errors
    assert "Bad Gateway" in str(error)


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xfe garbage", {"errors": "nope"}, {"message": "x"}, [1, 2], {"errors": [1]}],
)
def test_odd_bodies_never_crash(body):
    """Empty, undecodable or oddly shaped error bodies still give an APIError."""
    error = error_from_response(answer(418, body))

    assert type(error) is hc.APIError
    assert 418 == error.status_code


def test_errors_as_single_object_and_strings():
    """A lone error object, or bare strings in the list, are still read."""
    assert ["x"] == error_from_response(answer(400, {"errors": {"code": "x"}})).codes
    assert [hc.ErrorDetail("", "boom")] == error_from_response(
        answer(400, {"errors": ["boom"]})
    ).errors


def test_retry_after_seconds_and_http_date():
    """Retry-After as delta-seconds or as an HTTP date becomes seconds to wait."""
    limited = error_from_response(answer(429, headers={"Retry-After": "7"}))
    assert isinstance(limited, hc.RateLimitError)
    assert 7.0 == limited.retry_after
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 30.0 == parse_retry_after(date, now=now)
    assert 0.0 == parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now)
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None
    silent = error_from_response(answer(429))
    assert isinstance(silent, hc.RateLimitError)
    assert silent.retry_after is None


def test_retry_after_date_without_zone_is_utc(local_time_far_from_utc):
    """An HTTP date with the "-0000" zone (no zone information) is read as UTC, not local."""
    now = 1_700_086_400.0  # Wed, 15 Nov 2023 22:13:20 UTC

    assert 30.0 == parse_retry_after("Wed, 15 Nov 2023 22:13:50 -0000", now=now)


def test_retry_after_date_against_the_current_time():
    """Without ``now``, a date is measured from the current time: far ahead, or past (0)."""
    assert 0.0 == parse_retry_after("Wed, 15 Nov 2023 22:13:50 GMT")
    assert 3600.0 < parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")  # type: ignore[operator]


def test_transport_errors_translate():
    """httpx failures become APIConnectionError / APITimeoutError, noting if the request left."""
    refused = error_from_transport(httpx.ConnectError("refused"))
    timeout = error_from_transport(httpx.ReadTimeout("slow"))
    reset = error_from_transport(httpx.RemoteProtocolError("peer closed"))

    assert type(refused) is hc.APIConnectionError
    assert not refused.request_sent
    assert type(timeout) is hc.APITimeoutError
    assert timeout.request_sent
    assert reset.request_sent
    assert "connection failed: refused" == str(refused)
    assert "request timed out: ReadTimeout" == str(timeout)
    assert "connection failed: peer closed" == str(reset)


@pytest.mark.parametrize(
    ("exc", "text", "sent"),
    [
        (httpx.ConnectTimeout("slow"), "request timed out: ConnectTimeout", False),
        (httpx.PoolTimeout("busy"), "request timed out: PoolTimeout", False),
        (httpx.WriteTimeout("slow"), "request timed out: WriteTimeout", True),
        (httpx.RemoteProtocolError(""), "connection failed: RemoteProtocolError", True),
    ],
)
def test_transport_errors_say_whether_the_request_left(exc, text, sent):
    """Timeouts before connecting mean nothing was sent; a failure without text names its type."""
    error = error_from_transport(exc)

    assert text == str(error)
    assert sent is error.request_sent


def test_exceptions_keep_their_context_and_defaults():
    """Each exception's keyword context is kept, with the documented defaults."""
    assert hc.APIConnectionError("x").request_sent is True
    assert hc.APIConnectionError("x", request_sent=False).request_sent is False
    assert hc.ResponseValidationError("x").retryable is False
    assert hc.LimiterTimeoutError("x").retry_after is None
    assert 3.0 == hc.LimiterTimeoutError("x", retry_after=3.0).retry_after
    assert 2.5 == hc.RateLimitError("x", retry_after=2.5).retry_after
    assert 429 == hc.RateLimitError("x").status_code


def test_attempts_show_in_the_message_only_after_a_retry():
    """str() of an error names the attempts only when there was more than one."""
    error = hc.ServerError("HTTP 500", status_code=500)
    assert "HTTP 500" == str(error)

    error.attempts = 2
    assert "HTTP 500 (attempts: 2)" == str(error)
