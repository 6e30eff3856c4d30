"""Every exception the SDK raises, in one tree.

The hierarchy:

```text
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
├── LimiterTimeoutError         no turn within max_wait; nothing was sent
├── LimiterUnavailableError     the shared limiter (Redis) failed; nothing was sent
├── ClientClosedError           the client was closed (also a RuntimeError)
├── WebhookVerificationError    a webhook delivery HelpCrunch did not sign, or not an envelope
├── BulkAbortedError            a bulk run stopped: every recent id failed as in an outage
└── JournalError                a bulk run's journal cannot be written or reached (also an OSError)
```

Bad arguments are ``TypeError`` / ``ValueError`` raised before anything is sent; they are not
``HelpCrunchError``s because they are bugs in the calling code, not failures of the API.

HTTP answers and transport failures become these exceptions in one place,
``_send/_decode.py``; context is passed keyword-only, as httpx does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import httpx

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping, Sequence


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
    "JournalError",
    "LimiterTimeoutError",
    "LimiterUnavailableError",
    "NotFoundError",
    "RateLimitError",
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
            at most 20, each text cut to 200 characters (``MAX_TEXT``).
        headers: The answer's headers, with the API key redacted.
        body_excerpt: The start of the body as text (at most 200 characters),
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
    """404: no such chat (``chat_not_found`` / ``not_found``), or no such endpoint.

    HelpCrunch says which object is missing in a JSON error body. A 404 without one comes
    from something else at the URL (a proxy's error page, a web server, a ``base_url``
    missing ``/v1``): ``endpoint_not_found`` tells the two apart.
    """

    @property
    def endpoint_not_found(self) -> bool:
        """``True`` when the answer was not HelpCrunch's error (no ``errors`` entry).

        Then the URL, not the chat, is what was not found: every other call to the same
        ``base_url`` fails the same way, so a bulk run's circuit breaker counts it as an
        outage.
        """
        return not self.errors


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


class LimiterUnavailableError(HelpCrunchError):
    """The shared rate limiter (Redis) could not be used; the request was not sent."""


class ClientClosedError(HelpCrunchError, RuntimeError):
    """The client was closed (``aclose()`` or the end of its ``async with``).

    Raised by a call made after the close, and by every call still in progress when the
    client was closed: waiting for its turn, between two attempts, or in flight (a request
    cut off by the close may have reached the server). A bulk run raises it once, after the
    outcomes that completed before the close.
    """


class JournalError(HelpCrunchError, OSError):
    """A bulk run's journal could not be used.

    A file that cannot be written (a full disk, a file system gone read-only), or a
    ``RedisJournal`` whose Redis stayed unreachable for longer than the journal waits. The
    run stops at once, since an outcome it cannot record would be redone on resume without
    anyone knowing it was done: nothing more is sent, the outcomes recorded before the
    failure are yielded, then this error is raised. Fix the disk (or Redis) and run the same
    call again with the same journal to resume. Also an ``OSError``, so that
    ``except OSError`` around a run still sees a disk problem.

    Attributes:
        path: The journal file's path, or ``None`` for a journal in Redis.
        errno: The operating system's error number (``errno.ENOSPC`` for a full disk), or
            ``None``.
    """

    def __init__(
        self, message: str, *, path: os.PathLike[str] | str | None = None, errno: int | None = None
    ) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.errno = errno


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
