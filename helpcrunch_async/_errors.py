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
    └── WebhookVerificationError    a webhook delivery HelpCrunch did not sign, or not an envelope

Bad arguments are ``TypeError`` / ``ValueError`` raised before anything is sent; they are not
``HelpCrunchError``s because they are bugs in the calling code, not failures of the API.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs
import httpx

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
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

    Attributes:
        status_code: The HTTP status.
        errors: The parsed ``errors`` entries (empty if the body had none or was not JSON).
        response: The ``httpx.Response``, closed. Its request's ``Authorization`` header is
            redacted by httpx's own ``repr``; never log it by hand.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        errors: Sequence[ErrorDetail] = (),
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.errors = list(errors)
        self.response = response

    @property
    def codes(self) -> list[str]:
        """The error codes, in the order the server sent them."""
        return [e.code for e in self.errors]

    @property
    def headers(self) -> httpx.Headers:
        """The answer's headers (``x-request-id``, ``retry-after``...); empty without one."""
        return httpx.Headers() if self.response is None else self.response.headers

    @property
    def body_excerpt(self) -> str:
        """The start of the answer's body as text, at most ``_BODY_EXCERPT`` characters."""
        if self.response is None or not self.response.content:
            return ""
        return self.response.content[: _BODY_EXCERPT * 4].decode("utf-8", "replace")[:_BODY_EXCERPT]


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
        response: httpx.Response | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, errors=errors, response=response)
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

#: Longest error-body excerpt kept in a message when the body is not JSON.
_BODY_EXCERPT = 200


def parse_error_details(body: Any) -> list[ErrorDetail]:
    """Read both documented error-body styles; anything else gives no details."""
    if not isinstance(body, dict):
        return []
    raw = body.get("errors")
    if isinstance(raw, dict):  # tolerate a single object instead of a list
        raw = [raw]
    if not isinstance(raw, list):
        return []
    details = []
    for entry in raw:
        if isinstance(entry, dict):
            code = entry.get("code")
            message = entry.get("message")
            details.append(
                ErrorDetail(
                    code="" if code is None else str(code),
                    message="" if message is None else str(message),
                )
            )
        elif isinstance(entry, str):
            details.append(ErrorDetail(code="", message=entry))
    return details


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        current = datetime.now(timezone.utc).timestamp() if now is None else now
        seconds = when.timestamp() - current
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def error_from_response(response: httpx.Response) -> APIError:
    """Build the exception for an error answer: by HTTP status first, then by code.

    The body must already be read. A body that is not JSON still gives the right class.
    """
    status = response.status_code
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    details = parse_error_details(body)

    if status in _STATUS_CLASSES:
        cls = _STATUS_CLASSES[status]
    elif status >= 500:  # noqa: PLR2004
        cls = ServerError
    else:
        cls = APIError

    reason = response.reason_phrase or "error"
    message = f"HTTP {status} {reason}"
    if details:
        message += ": " + "; ".join(
            f"{d.code}: {d.message}" if d.code and d.message else (d.code or d.message)
            for d in details
        )
    elif response.content:
        excerpt = response.text[:_BODY_EXCERPT].strip()
        if excerpt:
            message += f": {excerpt!r}"

    if cls is RateLimitError:
        return RateLimitError(
            message,
            errors=details,
            response=response,
            retry_after=parse_retry_after(response.headers.get("retry-after"), now=time.time()),
        )
    return cls(message, status_code=status, errors=details, response=response)


def error_from_transport(exc: httpx.TransportError) -> APIConnectionError:
    """Translate httpx's transport failures; the caller raises the result ``from exc``."""
    # Connecting (or waiting for a pooled connection) happens before any byte is sent.
    sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"request timed out: {type(exc).__name__}", request_sent=sent)
    detail = str(exc) or type(exc).__name__
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
