"""Error answers become the right exception, whatever style the body is in."""

from __future__ import annotations

import email.utils

import httpx
import pytest

import helpcrunch_async as hc
from helpcrunch_async._errors import error_from_response, error_from_transport, parse_retry_after

OLD = {
    400: ("invalid_chat_value", "status value is invalid"),
    401: ("invalid_token", "Invalid token"),
    404: ("chat_not_found", "Chat is missing"),
    429: ("too_many_requests", "You have exceeded your requests limit"),
}


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
    ("status", "cls"),
    [
        (400, hc.BadRequestError),
        (401, hc.AuthenticationError),
        (404, hc.NotFoundError),
        (429, hc.RateLimitError),
    ],
)
def test_older_style_single_entry(status, cls):
    """The older style: one entry; class by status, details parsed, all shown in str()."""
    code, message = OLD[status]

    error = error_from_response(answer(status, {"errors": [{"code": code, "message": message}]}))

    assert cls is type(error)
    assert status == error.status_code
    assert [hc.ErrorDetail(code, message)] == error.errors
    assert str(status) in str(error)
    assert code in str(error)
    assert message in str(error)


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


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_server_error(status):
    """Any 5xx is a ServerError."""
    assert isinstance(error_from_response(answer(status, {"errors": []})), hc.ServerError)


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
    assert "peer closed" in str(reset)
