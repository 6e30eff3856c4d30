"""Bytes from the outside world, made safe: the one bounded JSON decoder and the text cap.

Every byte the SDK reads from the network, a journal or a webhook is hostile until proven
otherwise. Here is the one JSON decoder for all of them, bounded in nesting depth and in the
length of integer literals, and the one rule for keeping outside text: at most ``MAX_TEXT``
characters, with the API key redacted.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from .._errors import ResponseValidationError

if TYPE_CHECKING:
    from .._settings import Secret

__all__ = ["MAX_JSON_DEPTH", "MAX_TEXT", "REDACTED", "cut", "decode_json", "excerpt", "redact"]

#: Longest text kept from the outside world: a body's excerpt, each code and message of an
#: error body, a failure's reason in a journal or a report, a Redis error.
MAX_TEXT = 200
#: Deepest nesting of arrays and objects a JSON document may have. HelpCrunch's answers and
#: webhooks are four levels deep, custom data a few more; a hostile body nested 100,000 deep
#: must not reach Python's recursion limit (nor code that walks the result recursively).
MAX_JSON_DEPTH = 64
#: Longest integer literal decoded: ids are 64-bit (19 digits); a longer literal is hostile
#: (int() of a huge literal takes quadratic time on Python 3.10).
MAX_INT_DIGITS = 64
#: What replaces the API key in any server text the SDK shows or stores.
REDACTED = "<redacted>"


def redact(text: str, secret: Secret[str] | None) -> str:
    """``text`` with every occurrence of ``secret`` (as is, JSON- or URL-escaped) redacted.

    Applied to every server text an error shows or keeps: a proxy that echoes the request's
    ``Authorization`` header into its error page must not put the key into ``str(error)``,
    a journal or a report. The key comes wrapped in a ``Secret``, so that no frame of a
    traceback has it as a local variable.

    Examples:
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


def excerpt(content: bytes, secret: Secret[str] | None = None, *, limit: int = MAX_TEXT) -> str:
    """The start of ``content`` as text, at most ``limit`` characters, with the key redacted.

    Only a prefix is decoded, so the cost does not grow with the body; the prefix is long
    enough that a key starting inside the excerpt is redacted whole, not cut in two.
    """
    longest = max((len(form) for form in _secret_forms(secret)), default=0)
    # UTF-8 spends at most 4 bytes a character.
    text = content[: 4 * (limit + longest)].decode("utf-8", errors="replace")
    return redact(text, secret)[:limit].strip()


def cut(text: str, secret: Secret[str] | None = None) -> str:
    """``text`` with the key redacted, at most ``MAX_TEXT`` characters."""
    return redact(text, secret)[:MAX_TEXT]


def decode_json(content: bytes, *, secret: Secret[str] | None = None) -> Any:
    """Decode a JSON document, bounded; the one JSON decoder for wire data.

    Used for API answers, webhook deliveries and journal lines. ``secret`` is redacted from
    the excerpt a refusal quotes.

    Raises:
        ResponseValidationError: the body is not JSON (``retryable``: a truncated or
            garbled answer may come whole next time), is nested deeper than
            ``MAX_JSON_DEPTH``, or holds an integer longer than ``MAX_INT_DIGITS`` digits
            (neither retryable).
    """
    problem: ResponseValidationError | None = None
    try:
        value = json.loads(content, parse_int=_bounded_int)
    except RecursionError:
        value = None
        problem = _too_deep()
    except _LongIntegerError:
        value = None
        problem = ResponseValidationError(
            f"answer holds an integer longer than {MAX_INT_DIGITS} digits"
        )
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, an int past Python's digit limit
        value = None
        problem = ResponseValidationError(
            f"answer is not JSON: {excerpt(content, secret)!r}", retryable=True
        )
    else:
        # A body with fewer opening brackets than the limit cannot nest past it: counting
        # bytes is far cheaper than walking what was decoded, and every chat is such a body.
        openings = content.count(b"[") + content.count(b"{")
        if openings > MAX_JSON_DEPTH and not _within_depth(value, MAX_JSON_DEPTH):
            value = None
            problem = _too_deep()
    # A body may quote the key: it must not be a local of the frame the error leaves from.
    del content
    if problem is not None:
        raise problem
    return value


class _LongIntegerError(ValueError):
    """An integer literal past ``MAX_INT_DIGITS`` (internal: becomes the refusal)."""


def _bounded_int(literal: str) -> int:
    if len(literal) > MAX_INT_DIGITS:
        raise _LongIntegerError
    return int(literal)


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
