"""Error answers become the right exception, whatever style the body is in."""

from __future__ import annotations

import contextlib
import email.utils
import gc
import json
import math
import traceback
import tracemalloc
import urllib.parse
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpcrunch_async as hc
from helpcrunch_async._limit._headers import parse_retry_after
from helpcrunch_async._models._json import (
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    MAX_TEXT,
    REDACTED,
    decode_json,
    excerpt,
    redact,
)
from helpcrunch_async._send._decode import (
    MAX_ERROR_DETAILS,
    error_from_response,
    error_from_transport,
)
from helpcrunch_async._settings import Secret


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
    assert response.headers == error.headers
    assert response.text == error.body_excerpt


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
        ({"code": {"a": 1}, "message": "m"}, hc.ErrorDetail("", "m")),  # an object is no code
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
    ("body", "endpoint_not_found"),
    [
        ({"errors": [{"code": "chat_not_found", "message": "Chat is missing"}]}, False),
        ({"errors": [{"code": "not_fount", "message": "Chat not found"}]}, False),
        ("<html><h1>404 Not Found</h1></html>", True),
        ("Not Found", True),
        ({"message": "no route"}, True),
        (b"", True),
    ],
)
def test_a_404_says_whether_helpcrunch_sent_it(body, endpoint_not_found):
    """HelpCrunch names the missing object; any other 404 means the URL itself is wrong."""
    error = error_from_response(answer(404, body))

    assert hc.NotFoundError is type(error)
    assert endpoint_not_found == error.endpoint_not_found


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
    assert "" == hc.APIError("x", status_code=400).body_excerpt
    assert "" == hc.RateLimitError("x").body_excerpt


def test_attempts_show_in_the_message_only_after_a_retry():
    """str() of an error names the attempts only when there was more than one."""
    error = hc.ServerError("HTTP 500", status_code=500)
    assert "HTTP 500" == str(error)

    error.attempts = 2
    assert "HTTP 500 (attempts: 2)" == str(error)


# --- bounded and total: hostile bodies -----------------------------------------------------

SECRET = "sk-live-7f3a9c-REDACT-ME"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_decode_json_refuses_deep_nesting_without_recursion_error():
    """100,000 nested brackets are a ResponseValidationError (not retried), not RecursionError."""
    with pytest.raises(hc.ResponseValidationError, match="nested deeper") as info:
        decode_json(nested(100_000))

    assert not info.value.retryable


def test_decode_json_depth_limit_is_exact():
    """MAX_JSON_DEPTH levels decode; one more is refused, also when recursion would allow it."""
    assert decode_json(nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(hc.ResponseValidationError):
        decode_json(nested(MAX_JSON_DEPTH + 1))
    with pytest.raises(hc.ResponseValidationError):
        decode_json(b'{"a": ' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1))


def test_decode_json_depth_limit_is_exact_in_bodies_with_many_brackets():
    """With more brackets than levels (siblings), the limit is still exact: depth, not count."""
    siblings = b", []" * MAX_JSON_DEPTH + b', "[[[["'
    at_limit = b"[" + nested(MAX_JSON_DEPTH - 1) + siblings + b"]"
    past_limit = b"[" + nested(MAX_JSON_DEPTH) + siblings + b"]"

    assert decode_json(at_limit)[0] == decode_json(nested(MAX_JSON_DEPTH - 1))
    with pytest.raises(hc.ResponseValidationError, match="nested deeper"):
        decode_json(past_limit)


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe", b"NaN?", b"[1.5e]"])
def test_decode_json_refuses_what_is_not_json(content):
    """Truncated or undecodable: retryable validation errors."""
    with pytest.raises(hc.ResponseValidationError, match="not JSON") as info:
        decode_json(content)

    assert info.value.retryable
    assert info.value.__context__ is None  # a JSONDecodeError would hold the whole body


@pytest.mark.parametrize(
    "content", [b"1" * 65, b"[" + b"9" * 5000 + b"]", b'{"id": -' + b"1" * 65 + b"}"]
)
def test_decode_json_refuses_integers_longer_than_the_cap(content):
    """An integer literal past MAX_INT_DIGITS is refused, not retried, without converting it."""
    with pytest.raises(hc.ResponseValidationError, match=f"longer than {MAX_INT_DIGITS} digits"):
        decode_json(content)


def test_decode_json_takes_integers_up_to_the_cap():
    """64 digits are fine (ids are 19; custom data may hold long numbers)."""
    assert [10**63] == decode_json(b"[1" + b"0" * 63 + b"]")


@pytest.mark.parametrize(
    ("shown", "redacted"),
    [
        ('{"auth": "Bearer k/e+y\\"1"}', '{"auth": "Bearer <redacted>"}'),  # JSON-escaped
        ("GET /x?key=k%2Fe%2By%221 401", "GET /x?key=<redacted> 401"),  # URL-escaped
        ('echo: k/e+y"1', "echo: <redacted>"),  # as is
    ],
)
def test_the_key_is_redacted_as_is_json_escaped_and_url_escaped(shown, redacted):
    """A server may echo the key in any of its three forms: each is redacted whole."""
    assert redacted == redact(shown, Secret('k/e+y"1'))


def test_the_longest_form_of_the_key_is_redacted_first():
    """A key with a backslash at either end lies inside its JSON form: that form goes whole,
    no stray backslash left behind."""
    assert "x <redacted> y" == redact("x ab\\\\ y", Secret("ab\\"))
    assert "x <redacted> y" == redact("x \\\\ab y", Secret("\\ab"))


def test_an_excerpt_decodes_enough_for_a_key_longer_than_its_limit():
    """A key longer than the excerpt's limit, starting inside it, is still redacted: the
    excerpt shows the placeholder's start, never the key's."""
    key = "k" * 40
    shown = excerpt(f"error: {key} end".encode(), Secret(key), limit=10)

    assert "error: <re" == shown


def test_decode_json_redacts_the_key_from_its_excerpt():
    """A non-JSON page quoting the key shows it redacted."""
    with pytest.raises(hc.ResponseValidationError) as info:
        decode_json(f"<html>Bearer {SECRET}</html>".encode(), secret=Secret(SECRET))

    assert SECRET not in str(info.value)
    assert REDACTED in str(info.value)


@settings(max_examples=300, deadline=None)
@given(content=st.binary(max_size=200) | st.text(alphabet='[]{}"0123456789.eE-:, ').map(str.encode))
def test_decode_json_is_total(content):
    """Any bytes: a value, or ResponseValidationError."""
    with contextlib.suppress(hc.ResponseValidationError):
        decode_json(content)


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(max_size=80) | st.sampled_from(["1e999999999", "-1e400", "inf", "²", "9" * 5000])
)
def test_parse_retry_after_is_total(value):
    """Any header value: seconds (finite, >= 0) or None."""
    seconds = parse_retry_after(value, now=1_700_000_000.0)

    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@settings(max_examples=200, deadline=None)
@given(status=st.integers(400, 599), body=st.binary(max_size=300))
def test_error_from_response_is_total(status, body):
    """Any error status with any body gives an APIError of the status's class."""
    error = error_from_response(answer(status, body))

    assert isinstance(error, hc.APIError)
    assert status == error.status_code


def test_deeply_nested_error_body_still_gives_the_right_class():
    """An error body nested 100,000 deep is no RecursionError: a 503 is still a ServerError."""
    error = error_from_response(answer(503, nested(100_000)))

    assert type(error) is hc.ServerError
    assert [] == error.errors


def test_error_keeps_a_bounded_excerpt_not_the_body():
    """A 10 MB error page leaves an excerpt of MAX_TEXT characters and no response."""
    error = error_from_response(answer(502, b"x" * 10_000_000))

    assert MAX_TEXT == len(error.body_excerpt)
    assert not hasattr(error, "response")
    assert len(str(error)) < 2 * MAX_TEXT


def test_many_failed_outcomes_do_not_pin_their_bodies():
    """500 errors built from 100 kB answers hold well under what the bodies weighed (50 MB)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        errors = [error_from_response(answer(500, b"e" * 100_000)) for _ in range(500)]
        gc.collect()  # what is pinned is what survives a collection, whenever it runs
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert 500 == len(errors)
    assert held < 5_000_000


def test_error_details_are_bounded():
    """Thousands of entries, or huge messages, keep MAX_ERROR_DETAILS entries of bounded text."""
    body = {"errors": [{"code": "c" * 10_000, "message": "m" * 10_000}] * 5_000}

    error = error_from_response(answer(400, body))

    assert MAX_ERROR_DETAILS == len(error.errors)
    assert all(len(d.code) <= MAX_TEXT and len(d.message) <= MAX_TEXT for d in error.errors)


@pytest.mark.parametrize(
    "body",
    [
        {"errors": [{"code": "unauthorized", "message": f"bad header: Bearer {SECRET}"}]},
        {"errors": [f"Authorization: Bearer {SECRET}"]},
        {"errors": f"Authorization: Bearer {SECRET}"},
        {"errors": [{"code": SECRET}]},
        {"errors": {f"Authorization: Bearer {SECRET}": ["is not allowed"]}},
        f"<html><pre>Authorization: Bearer {SECRET}</pre></html>",
        json.dumps({"echo": {"authorization": f"Bearer {SECRET}"}}),
        "x" * (MAX_TEXT - 15) + SECRET,  # the key across the excerpt's end
        "\u00e9" * 110 + SECRET,  # the key past the excerpt's byte count, within its characters
        "\U0001d11e" * 195 + SECRET,  # four-byte characters: the key starts past 4 * 195 bytes
    ],
    ids=[
        "detail",
        "string-detail",
        "errors-string",
        "code",
        "field-name",
        "html",
        "json-echo",
        "at-the-cut",
        "multibyte",
        "four-byte",
    ],
)
def test_echoed_key_is_redacted_everywhere(body):
    """A proxy echoing the Authorization header: no part of the key in the error's text."""
    response = answer(
        401,
        body if isinstance(body, dict) else body.encode(),
        headers={"X-Echo": f"Bearer {SECRET}"},
    )

    error = error_from_response(response, secret=Secret(SECRET))

    shown = [str(error), repr(error), error.body_excerpt, repr(error.headers), repr(error.errors)]
    for text in shown:
        assert SECRET[:4] not in text  # not even the start of the key


def test_a_key_of_digits_is_redacted_from_numeric_codes_and_messages():
    """A key made of digits, echoed as a JSON number, is redacted from the details too."""
    key = "4815162342"
    body = {"errors": [{"code": int(key), "message": float(key)}]}

    error = error_from_response(answer(401, body), secret=Secret(key))

    assert [hc.ErrorDetail(REDACTED, f"{REDACTED}.0")] == error.errors


def test_key_in_an_escaped_form_is_redacted():
    """The key JSON- or URL-escaped (a key with / or +) is redacted too."""
    secret = "ab/cd+ef=="
    text = json.dumps({"k": secret}) + " " + urllib.parse.quote(secret, safe="")

    assert "ab" not in redact(text, Secret(secret))
    assert "x" == redact("x", None)


def test_transport_error_text_is_cut_and_redacted():
    """A malformed answer quoted by h11 in the error text never shows the key."""
    error = error_from_transport(
        httpx.RemoteProtocolError(f"illegal header line: Bearer {SECRET}" + "z" * 10_000),
        secret=Secret(SECRET),
    )

    assert SECRET not in str(error)
    assert len(str(error)) < 2 * MAX_TEXT


def test_key_is_no_local_of_a_failing_decode():
    """decode_json raising with the key at hand shows it in no frame's locals."""
    with pytest.raises(hc.ResponseValidationError) as info:
        decode_json(b"<html>" + SECRET.encode(), secret=Secret(SECRET))

    rendered = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    assert SECRET not in "".join(rendered.format())


def test_retry_after_is_bounded_in_length():
    """A Retry-After of 64 characters is read; a longer one is ignored."""
    assert 7.0 == parse_retry_after(" " * 60 + "7.0")
    assert parse_retry_after(" " * 62 + "7.0") is None


def test_key_in_the_reason_phrase_is_redacted():
    """A proxy that puts the Authorization header in its reason phrase: the key is redacted."""
    response = httpx.Response(
        401, extensions={"reason_phrase": f"Bearer {SECRET}".encode()}, request=answer(401).request
    )

    error = error_from_response(response, secret=Secret(SECRET))

    assert f"HTTP 401 Bearer {REDACTED}" == str(error)


def test_retry_after_longer_than_64_characters_is_ignored():
    """A Retry-After is read up to 64 characters (padding included); a longer one is ignored."""
    assert 7.0 == parse_retry_after("7".ljust(64))
    assert parse_retry_after("7".ljust(65)) is None


# --- errors given as an object of fields -------------------------------------------------------


def test_errors_as_an_object_of_fields_keep_each_fields_messages():
    """{"errors": {"status": ["is invalid"]}}: the field and its message, in errors and str()."""
    error = error_from_response(answer(422, {"errors": {"status": ["is invalid"]}}))

    assert [hc.ErrorDetail("status", "is invalid")] == error.errors
    assert "HTTP 422 Unprocessable Entity: status: is invalid" == str(error)


def test_errors_of_several_fields_nested_or_plain_keep_every_message_with_its_path():
    """Several messages per field, nested fields and plain strings each keep their path."""
    body = {
        "errors": {
            "status": ["is invalid", "is required"],
            "filter": [{"field": ["unknown"]}],
            "chat": {"id": "must be a number"},
            "count": 3,
        }
    }

    error = error_from_response(answer(400, body))

    assert [
        ("status", "is invalid"),
        ("status", "is required"),
        ("filter[0].field", "unknown"),
        ("chat.id", "must be a number"),
        ("count", "3"),
    ] == [(d.code, d.message) for d in error.errors]
    assert isinstance(error, hc.BadRequestError)
    assert "filter[0].field: unknown" in str(error)


def test_nested_fields_keep_their_order():
    """The fields of a nested object come out in the order the server sent them."""
    body = {"errors": {"chat": {"id": "must be a number", "status": "is invalid"}}}

    error = error_from_response(answer(400, body))

    assert [
        hc.ErrorDetail("chat.id", "must be a number"),
        hc.ErrorDetail("chat.status", "is invalid"),
    ] == error.errors


def test_an_object_of_fields_gives_at_most_max_error_details():
    """Two fields of 15 messages each: the first MAX_ERROR_DETAILS messages, in order."""
    body = {"errors": {"a": [f"a{i}" for i in range(15)], "b": [f"b{i}" for i in range(15)]}}

    error = error_from_response(answer(422, body))

    expected = [("a", f"a{i}") for i in range(15)] + [("b", f"b{i}") for i in range(5)]
    assert expected == [(d.code, d.message) for d in error.errors]


@pytest.mark.parametrize(
    "errors",
    [
        {**{f"f{i}": "" for i in range(MAX_ERROR_DETAILS)}, "late": "is invalid"},
        {"chat": {**{f"f{i}": "" for i in range(MAX_ERROR_DETAILS)}, "late": "is invalid"}},
        {"chat": [""] * MAX_ERROR_DETAILS + ["is invalid"]},
    ],
    ids=["fields", "nested-fields", "messages"],
)
def test_an_object_or_list_of_errors_is_read_up_to_max_error_details_entries(errors):
    """Past the first MAX_ERROR_DETAILS entries of an object or a list nothing is read."""
    error = error_from_response(answer(422, {"errors": errors}))

    assert [] == error.errors


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        ("reached", [hc.ErrorDetail("last", "reached")]),  # the 1000th value looked at
        (["reached"], []),  # the list is the 1000th value, its message the 1001st
    ],
    ids=["1000th", "1001st"],
)
def test_an_object_of_fields_is_read_up_to_its_1000th_value(last, expected):
    """The walk through an object of fields stops after 1000 values, containers included."""
    padding = [[""] * 10] * 10  # 111 values (the lists included), none of them a message
    fields = {**{f"p{i}": padding for i in range(9)}, "last": last}

    error = error_from_response(answer(422, {"errors": fields}))

    assert expected == error.errors


def test_errors_as_one_string_keep_it():
    """{"errors": "text"} is one message."""
    error = error_from_response(answer(422, {"errors": "Status is invalid"}))

    assert [hc.ErrorDetail("", "Status is invalid")] == error.errors
    assert str(error).endswith(": Status is invalid")


@pytest.mark.parametrize(
    ("entry", "detail"),
    [
        ({"code": "not_found", "message": "Gone"}, hc.ErrorDetail("not_found", "Gone")),
        ({"code": "not_found"}, hc.ErrorDetail("not_found", "")),
        ({"message": "Gone"}, hc.ErrorDetail("", "Gone")),
    ],
    ids=["code-and-message", "code", "message"],
)
def test_errors_as_one_entry_object_stay_one_entry(entry, detail):
    """A single entry object instead of a list (a code, a message or both) is that one entry."""
    error = error_from_response(answer(404, {"errors": entry}))

    assert [detail] == error.errors


def test_a_hostile_errors_object_is_bounded_and_redacted():
    """Thousands of fields nested deep: at most 20 details, each cut, the key redacted."""
    fields: dict[str, object] = {f"f{i}": [[{"x": [f"Bearer {SECRET}" * 50]}]] for i in range(5000)}
    fields["empty"] = [[[[]]]] * 1000

    error = error_from_response(answer(422, {"errors": fields}), secret=Secret(SECRET))

    assert 20 == len(error.errors)
    assert "f0[0][0].x" == error.errors[0].code
    assert all(len(d.message) <= MAX_TEXT for d in error.errors)
    assert SECRET not in str(error)
    assert SECRET not in repr(error.errors)


def test_journal_error_names_its_path_and_cause_and_is_an_os_error():
    """JournalError carries the path and errno, reads as its message, and is an OSError."""
    error = hc.JournalError("journal j.jsonl cannot be written: full", path="j.jsonl", errno=28)

    assert (Path("j.jsonl"), 28) == (error.path, error.errno)
    assert "journal j.jsonl cannot be written: full" == str(error)
    assert isinstance(error, hc.HelpCrunchError)
    assert isinstance(error, OSError)


def test_journal_error_in_redis_has_no_path():
    """A journal in Redis has no file: ``path`` and ``errno`` are ``None``."""
    error = hc.JournalError("the Redis journal stayed unreachable")

    assert (None, None) == (error.path, error.errno)
