"""Every exception the SDK raises, and the one place HTTP answers become exceptions.

The hierarchy::

    HelpCrunchError
    ├── APIError                    the server answered with an error status
    │   ├── BadRequestError         400
    │   ├── AuthenticationError     401
    │   ├── NotFoundError           404
    │   ├── RateLimitError          429
    │   └── ServerError             5xx
    ├── APIConnectionError          no answer: DNS, refused, reset, TLS...
    │   └── APITimeoutError         no answer in time
    ├── ResponseValidationError     a 2xx whose body is not JSON or not the documented shape
    ├── LimiterTimeoutError         no turn within ``max_wait``; nothing was sent
    ├── RateLimiterUnavailableError the shared limiter (Redis) failed; nothing was sent
    ├── ClientClosedError           the client was closed (also a ``RuntimeError``)
    ├── WebhookVerificationError    a webhook delivery HelpCrunch did not sign, or not an envelope
    └── BulkAbortedError            a bulk run stopped: every recent id failed as in an outage

Bad arguments are ``TypeError`` / ``ValueError`` raised before anything is sent; they are not
``HelpCrunchError``s because they are bugs in the calling code, not failures of the API.

Everything here that reads wire data (``decode_json``, ``parse_error_details``,
``parse_retry_after``, ``error_from_response``) is total and bounded: it returns a value or
raises ``ResponseValidationError``, and keeps no more than a short excerpt of what it read,
with the API key redacted.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs
import httpx

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._settings import Secret

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BulkAbortedError",
    "ClientClosedError",
    "ErrorDetail",
    "HelpCrunchError",
    "LimiterTimeoutError",
    "NotFoundError",
    "RateLimitError",
    "RateLimiterUnavailableError",
    "ResponseValidationError",
    "ServerError",
    "WebhookVerificationError",
]


@attrs.frozen
class ErrorDetail:
    """One entry of an error body's ``errors`` list.

    Attributes:
        code: The machine-readable code, as sent (``"invalid_chat_value"``, ``"unauthorized"``,
            a field path such as ``"filter[0].field"``; typos such as ``"not_fount"`` included).
        message: The human-readable message, or ``""`` if the server sent none.
    """

    code: str
    message: str = ""


class HelpCrunchError(Exception):
    """Root of every exception the SDK raises for a failed call.

    Attributes:
        attempts: How many times the request was sent before this error was final (1 when
            it was not retried).
    """

    attempts: int = 1

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} (attempts: {self.attempts})" if self.attempts > 1 else base


class APIError(HelpCrunchError):
    """The server answered with an HTTP error status.

    The error keeps a bounded excerpt of the answer, never the answer itself: thousands of
    failed outcomes held by a bulk run must not hold thousands of bodies.

    Attributes:
        status_code: The HTTP status.
        errors: The parsed ``errors`` entries (empty if the body had none or was not JSON);
            at most ``MAX_ERROR_DETAILS``, each text cut to ``BODY_EXCERPT`` characters.
        headers: The answer's headers, with the API key redacted.
        body_excerpt: The start of the body as text (at most ``BODY_EXCERPT`` characters),
            with the API key redacted.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        errors: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
        body_excerpt: str = "",
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.errors = list(errors)
        self.headers = httpx.Headers(headers)
        self.body_excerpt = body_excerpt

    @property
    def codes(self) -> list[str]:
        """The error codes, in the order the server sent them."""
        return [e.code for e in self.errors]


class BadRequestError(APIError):
    """400: the request was invalid (``invalid_chat_value``, a bad filter...). Never retried."""


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked (``invalid_token`` / ``unauthorized``)."""


class NotFoundError(APIError):
    """404: no such chat (``chat_not_found`` / ``not_found``)."""


class RateLimitError(APIError):
    """429: the key's request limit is exhausted.

    Attributes:
        retry_after: Seconds the server asked us to wait (from ``Retry-After``), or ``None``
            when it did not say. HelpCrunch does not document the header; it is used when present.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        errors: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
        body_excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            errors=errors,
            headers=headers,
            body_excerpt=body_excerpt,
        )
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: HelpCrunch (or a proxy in front of it) failed."""


class APIConnectionError(HelpCrunchError):
    """The request got no HTTP answer: refused, reset, DNS or TLS failure, dropped connection.

    Attributes:
        request_sent: ``False`` when the request surely never reached the server (the
            connection could not be made), ``True`` when it may have.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """The request got no answer within the configured timeout."""


class ResponseValidationError(HelpCrunchError):
    """A 2xx answer whose body is not JSON, or not the documented shape.

    Attributes:
        retryable: ``True`` when the body was not JSON at all (truncated, garbled): the client
            retries those, since the status update is idempotent. A well-formed body of the
            wrong shape is not retried: asking again would give the same answer.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class BulkAbortedError(HelpCrunchError):
    """A bulk run stopped early: its last ``failures`` ids all failed as in an outage.

    Raised by ``stream_update_status``/``bulk_update_status`` with
    ``stop_after_consecutive_failures`` set, after every completed outcome was yielded (and
    journaled): run the same job again with the same journal to resume once the API is back.

    Attributes:
        failures: How many ids in a row failed.
        last_error: The last of those failures (an ``APIConnectionError`` or ``ServerError``).
    """

    def __init__(self, message: str, *, failures: int, last_error: BaseException | None) -> None:
        super().__init__(message)
        self.failures = failures
        self.last_error = last_error


class LimiterTimeoutError(HelpCrunchError):
    """No turn within the call's ``max_wait``: nothing was sent, and the place was given up.

    Attributes:
        retry_after: Seconds until a turn is expected, when the limiter can tell; a web
            handler can pass it on as ``Retry-After`` with a 503.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiterUnavailableError(HelpCrunchError):
    """The shared rate limiter (Redis) could not be used; the request was not sent."""


class ClientClosedError(HelpCrunchError, RuntimeError):
    """The client was closed (``aclose()`` or the end of its ``async with``) before this call."""


_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    429: RateLimitError,
}

#: Longest excerpt of server text an error keeps: of a body that is not JSON, and of each
#: code and message of an error body.
BODY_EXCERPT = 200
#: Most ``errors`` entries an ``APIError`` keeps; HelpCrunch sends one to three.
MAX_ERROR_DETAILS = 20
#: Deepest nesting of arrays and objects a JSON body may have. HelpCrunch's answers are four
#: levels deep; a hostile body nested 100,000 deep must not reach Python's recursion limit
#: (nor code that walks the result recursively).
MAX_JSON_DEPTH = 64
#: Longest ``Retry-After`` value read: an HTTP date is 29 characters.
_MAX_RETRY_AFTER_LENGTH = 64
#: What replaces the API key in any server text the SDK shows or stores.
REDACTED = "<redacted>"


def redact(text: str, secret: Secret[str] | None) -> str:
    """``text`` with every occurrence of ``secret`` (as is, JSON- or URL-escaped) redacted.

    Applied to every server text an error shows or keeps: a proxy that echoes the request's
    ``Authorization`` header into its error page must not put the key into ``str(error)``,
    a journal or a report. The key comes wrapped in a ``Secret``, so that no frame of a
    traceback has it as a local variable.

    Example:
        >>> redact('echo: "Bearer s3cr3t"', Secret("s3cr3t"))
        'echo: "Bearer <redacted>"'
    """
    for form in _secret_forms(secret):
        text = text.replace(form, REDACTED)
    return text


def _secret_forms(secret: Secret[str] | None) -> list[str]:
    """The key as it may appear in server text: as is, JSON-escaped, URL-escaped."""
    if secret is None or not secret.reveal():
        return []
    key = secret.reveal()
    forms = {key, json.dumps(key)[1:-1], urllib.parse.quote(key, safe="")}
    return sorted(forms, key=len, reverse=True)  # the longest first: it may contain another


def excerpt(content: bytes, secret: Secret[str] | None = None, *, limit: int = BODY_EXCERPT) -> str:
    """The start of ``content`` as text, at most ``limit`` characters, with the key redacted.

    Only a prefix is decoded, so the cost does not grow with the body; the prefix is long
    enough that a key starting inside the excerpt is redacted whole, not cut in two.
    """
    longest = max((len(form) for form in _secret_forms(secret)), default=0)
    # UTF-8 spends at most 4 bytes a character.
    text = content[: 4 * (limit + longest)].decode("utf-8", errors="replace")
    return redact(text, secret)[:limit].strip()


def _cut(text: str, secret: Secret[str] | None) -> str:
    return redact(text, secret)[:BODY_EXCERPT]


def decode_json(content: bytes, *, secret: Secret[str] | None = None) -> Any:
    """Decode a JSON body, bounded in depth; the one JSON decoder for wire data.

    Raises:
        ResponseValidationError: the body is not JSON (``retryable``: a truncated or
            garbled answer may come whole next time), or is nested deeper than
            ``MAX_JSON_DEPTH`` (not retryable).
    """
    problem: ResponseValidationError | None = None
    try:
        value = json.loads(content)
    except RecursionError:
        value = None
        problem = _too_deep()
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, an int past Python's digit limit
        value = None
        problem = ResponseValidationError(
            f"answer is not JSON: {excerpt(content, secret)!r}", retryable=True
        )
    else:
        if not _within_depth(value, MAX_JSON_DEPTH):
            value = None
            problem = _too_deep()
    # A body may quote the key: it must not be a local of the frame the error leaves from.
    del content
    if problem is not None:
        raise problem
    return value


def _too_deep() -> ResponseValidationError:
    return ResponseValidationError(f"answer is JSON nested deeper than {MAX_JSON_DEPTH} levels")


def _within_depth(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest at most ``limit`` deep; iterative, so never recursing."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        container, depth = stack.pop()
        if depth > limit:
            return False
        children = container.values() if isinstance(container, dict) else container
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def _detail_text(value: Any, secret: Secret[str] | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _cut(value, secret)
    if isinstance(value, bool | int | float):
        return _cut(json.dumps(value), secret)
    return ""  # a nested object is no code or message


def parse_error_details(body: Any, *, secret: Secret[str] | None = None) -> list[ErrorDetail]:
    """Read both documented error-body styles; anything else gives no details.

    Keeps at most ``MAX_ERROR_DETAILS`` entries, each text cut to ``BODY_EXCERPT``
    characters, with ``secret`` redacted.
    """
    if not isinstance(body, dict):
        return []
    raw = body.get("errors")
    if isinstance(raw, dict):  # tolerate a single object instead of a list
        raw = [raw]
    if not isinstance(raw, list):
        return []
    details = []
    for entry in raw[:MAX_ERROR_DETAILS]:
        if isinstance(entry, dict):
            details.append(
                ErrorDetail(
                    code=_detail_text(entry.get("code"), secret),
                    message=_detail_text(entry.get("message"), secret),
                )
            )
        elif isinstance(entry, str):
            details.append(ErrorDetail(code="", message=_cut(entry, secret)))
    return details


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``.

    Anything that is neither (too long, not finite, an impossible date) is ``None``.
    """
    if not isinstance(value, str) or len(value) > _MAX_RETRY_AFTER_LENGTH:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            current = datetime.now(timezone.utc).timestamp() if now is None else now
            seconds = when.timestamp() - current
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def error_from_response(response: httpx.Response, *, secret: Secret[str] | None = None) -> APIError:
    """Build the exception for an error answer: by HTTP status first, then by code.

    The body must already be read. A body that is not JSON still gives the right class.
    ``secret`` (the API key) is redacted from every text the error keeps; the error keeps
    no reference to the response or its body.
    """
    status = response.status_code
    content = response.content
    try:
        body = decode_json(content) if content else None
    except ResponseValidationError:
        body = None
    details = parse_error_details(body, secret=secret)

    if status in _STATUS_CLASSES:
        cls = _STATUS_CLASSES[status]
    elif status >= 500:  # noqa: PLR2004
        cls = ServerError
    else:
        cls = APIError

    reason = _cut(response.reason_phrase, secret) or "error"
    body_excerpt = excerpt(content, secret)
    message = f"HTTP {status} {reason}"
    if details:
        message += ": " + "; ".join(
            f"{d.code}: {d.message}" if d.code and d.message else (d.code or d.message)
            for d in details
        )
    elif body_excerpt:
        message += f": {body_excerpt!r}"
    headers = [(name, redact(value, secret)) for name, value in response.headers.multi_items()]

    if cls is RateLimitError:
        return RateLimitError(
            message,
            errors=details,
            headers=httpx.Headers(headers),
            body_excerpt=body_excerpt,
            retry_after=parse_retry_after(response.headers.get("retry-after"), now=time.time()),
        )
    return cls(
        message,
        status_code=status,
        errors=details,
        headers=httpx.Headers(headers),
        body_excerpt=body_excerpt,
    )


def error_from_transport(
    exc: httpx.TransportError, *, secret: Secret[str] | None = None
) -> APIConnectionError:
    """Translate httpx's transport failures; the caller raises the result ``from exc``.

    The text of the failure can quote what the server sent (a malformed header line), so it
    is cut short and ``secret`` is redacted from it.
    """
    # Connecting (or waiting for a pooled connection) happens before any byte is sent.
    sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"request timed out: {type(exc).__name__}", request_sent=sent)
    detail = _cut(str(exc), secret) or type(exc).__name__
    return APIConnectionError(f"connection failed: {detail}", request_sent=sent)


class WebhookVerificationError(HelpCrunchError):
    """A webhook delivery that must not be trusted: unsigned, wrongly signed, or malformed.

    Raised by ``helpcrunch_async.webhooks.parse_event``. The message says what was wrong,
    never what the signature should have been nor the signing key.

    Attributes:
        reason: ``"signature"`` (missing or wrong: not from HelpCrunch, or tampered with),
            ``"size"`` (a body over the size cap) or ``"envelope"`` (signed, but not a valid
            event envelope). The webhook endpoint answers 401, 413 and 400 for them.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
