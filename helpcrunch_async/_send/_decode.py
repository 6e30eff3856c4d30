"""The one place HTTP answers and transport failures become the SDK's exceptions.

Total and bounded: whatever a server sends, the result is an exception of the right class
keeping no more than ``MAX_TEXT`` characters of any server text, with the API key redacted,
and no reference to the response or its body.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import TYPE_CHECKING, Any

import httpx

from .._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ErrorDetail,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from .._limit._headers import parse_retry_after
from .._models._json import cut, decode_json, excerpt, redact

if TYPE_CHECKING:
    from .._settings import Secret

__all__ = ["error_from_response", "error_from_transport", "parse_error_details"]

_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    429: RateLimitError,
}
#: Most ``errors`` entries an ``APIError`` keeps; HelpCrunch sends one to three.
MAX_ERROR_DETAILS = 20
#: Most values looked at in an ``errors`` object of fields, however it nests.
_MAX_FIELD_STEPS = 50 * MAX_ERROR_DETAILS


def _detail_text(value: Any, secret: Secret[str] | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return cut(value, secret)
    if isinstance(value, bool | int | float):
        return cut(json.dumps(value), secret)
    return ""  # a nested object is no code or message


def parse_error_details(body: Any, *, secret: Secret[str] | None = None) -> list[ErrorDetail]:
    """Read both documented error-body styles, and the other shapes servers give ``errors``.

    - a list of ``{"code", "message"}`` entries (or of strings): HelpCrunch's documented
      styles;
    - one such entry instead of a list;
    - an object of fields and their messages, as many frameworks answer a validation
      failure (``{"status": ["is invalid"]}``): one detail per message, the field (its path
      when nested: ``filter[0].field``) as the code;
    - a string: one detail with that message.

    Anything else gives no details. Keeps at most ``MAX_ERROR_DETAILS`` entries, each text
    cut to ``MAX_TEXT`` characters, with ``secret`` redacted.
    """
    if not isinstance(body, dict):
        return []
    raw = body.get("errors")
    if isinstance(raw, str):
        return [ErrorDetail(code="", message=cut(raw, secret))]
    if isinstance(raw, dict):
        if "code" not in raw and "message" not in raw:
            return _field_messages(raw, secret)
        raw = [raw]  # a single entry instead of a list
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
            details.append(ErrorDetail(code="", message=cut(entry, secret)))
    return details


def _field_messages(fields: dict[Any, Any], secret: Secret[str] | None) -> list[ErrorDetail]:
    """An object of fields and their messages: one detail per message, the field as the code.

    ``{"status": ["is invalid"], "filter": [{"field": ["unknown"]}]}`` gives
    ``status: is invalid`` and ``filter[0].field: unknown``; bounded whatever the nesting or
    the size.
    """
    details: list[ErrorDetail] = []
    pending: list[tuple[str, Any]] = [
        (str(name), value) for name, value in itertools.islice(fields.items(), MAX_ERROR_DETAILS)
    ][::-1]
    steps = 0
    while pending and len(details) < MAX_ERROR_DETAILS and steps < _MAX_FIELD_STEPS:
        steps += 1
        path, value = pending.pop()
        if isinstance(value, dict):
            items = itertools.islice(value.items(), MAX_ERROR_DETAILS)
            pending += [(f"{path}.{name}", inner) for name, inner in items][::-1]
        elif isinstance(value, list):
            items = itertools.islice(enumerate(value), MAX_ERROR_DETAILS)
            pending += [
                (f"{path}[{i}]" if isinstance(inner, dict | list) else path, inner)
                for i, inner in items
            ][::-1]
        elif message := _detail_text(value, secret):
            details.append(ErrorDetail(code=cut(path, secret), message=message))
    return details


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

    reason = cut(response.reason_phrase, secret) or "error"
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
    detail = cut(str(exc), secret) or type(exc).__name__
    return APIConnectionError(f"connection failed: {detail}", request_sent=sent)
