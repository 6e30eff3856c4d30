"""Verifying a webhook delivery's signature, then parsing its envelope.

The signing key is wrapped in a ``Secret`` as soon as it is received, and the HMAC is
computed and compared in functions that only return: no frame of a traceback holds the key,
or the signature the body should have had, as a local.
"""

from __future__ import annotations

import hashlib
import hmac

from .._errors import ResponseValidationError, WebhookVerificationError
from .._models._json import decode_json
from .._settings import Secret
from ._events import WebhookEvent

__all__ = [
    "MAX_BODY_SIZE",
    "SIGNATURE_HEADER",
    "parse_event",
    "sign",
    "signing_key_bytes",
    "verify_and_parse",
]

#: The header HelpCrunch signs each delivery in.
SIGNATURE_HEADER = "X-HelpCrunch-Signature"
#: Largest body accepted, in bytes. A chat or a customer is a few kilobytes; a megabyte is
#: far more than any documented event and small enough to hold and hash without a thought.
MAX_BODY_SIZE = 1024 * 1024


def signing_key_bytes(signing_key: Secret[object]) -> Secret[bytes]:
    """The key as bytes, if it is a non-empty str; else a ``TypeError``/``ValueError``.

    The key arrives and leaves wrapped in a ``Secret``: a traceback rendered with its locals
    (rich, ``pytest -l``) shows ``Secret(<redacted>)``, never the key.
    """
    if not isinstance(signing_key.reveal(), str):
        raise TypeError(f"signing_key must be a str, not {type(signing_key.reveal()).__name__}")
    if not str(signing_key.reveal()).strip():
        raise ValueError("signing_key is empty: copy the HTTP Webhook Signing Key from HelpCrunch")
    return Secret(str(signing_key.reveal()).encode())


def _check_body(body: object) -> bytes:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    return bytes(body)


def _hex_hmac(key: Secret[bytes], body: bytes) -> str:
    # Only returns: no frame holding the key, or a valid signature, is ever on a traceback.
    return hmac.new(key.reveal(), body, hashlib.sha1).hexdigest()


def _signed_with(key: Secret[bytes], body: bytes, signature: str) -> bool:
    """Whether ``signature`` is the body's HMAC-SHA1 under ``key``, compared in constant time."""
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(_hex_hmac(key, body).encode(), given)


def sign(body: bytes, signing_key: str) -> str:
    """The ``X-HelpCrunch-Signature`` of ``body``: lowercase hex HMAC-SHA1 keyed with the key.

    Useful to sign deliveries in your own tests; the emulator signs with it.
    """
    key: Secret[object] = Secret(signing_key)
    del signing_key  # from here on the key is in no local of this frame
    return _hex_hmac(signing_key_bytes(key), _check_body(body))


def parse_event(body: bytes, signature: str | None, *, signing_key: str) -> WebhookEvent:
    """Verify a webhook delivery's signature, then parse its envelope.

    ``body`` is the raw request body, exactly as received (verify before decoding anything);
    ``signature`` the ``X-HelpCrunch-Signature`` header, or ``None`` when it is missing. The
    signature is checked in constant time against the HMAC-SHA1 of ``body`` keyed with
    ``signing_key`` (Settings → Developers → Webhooks in HelpCrunch).

    Examples:
        >>> event = parse_event(  # doctest: +SKIP
        ...     await request.body(),
        ...     request.headers.get("X-HelpCrunch-Signature"),
        ...     signing_key=os.environ["HELPCRUNCH_WEBHOOK_KEY"],
        ... )
        >>> if event.type == "chat.new": ...  # doctest: +SKIP

    Raises:
        TypeError, ValueError: ``body`` is not bytes, or the signing key is not a non-empty str.
        WebhookVerificationError: the signature is missing or wrong (``reason="signature"``),
            the body is over ``MAX_BODY_SIZE`` (``"size"``), or a correctly signed body is not
            a valid envelope (``"envelope"``). Never a raw JSON or key error.
    """
    key: Secret[object] = Secret(signing_key)
    del signing_key  # from here on the key is in no local of this frame
    return verify_and_parse(_check_body(body), signature, signing_key_bytes(key))


def verify_and_parse(body: bytes, signature: object, key: Secret[bytes]) -> WebhookEvent:
    """``parse_event`` with the key already checked (the endpoint checks it once)."""
    if len(body) > MAX_BODY_SIZE:
        raise WebhookVerificationError(
            f"body of {len(body)} bytes is over the {MAX_BODY_SIZE}-byte cap", reason="size"
        )
    if signature is None or not str(signature).strip():
        raise WebhookVerificationError(f"no {SIGNATURE_HEADER} header", reason="signature")
    if not isinstance(signature, str):
        raise TypeError(f"signature must be a str or None, not {type(signature).__name__}")
    if not _signed_with(key, body, signature):
        raise WebhookVerificationError(
            f"{SIGNATURE_HEADER} does not match the body: not signed with this key, "
            "or tampered with",
            reason="signature",
        )
    try:
        payload = decode_json(body)
    except ResponseValidationError as exc:
        raise WebhookVerificationError(
            f"signed body is refused: {exc}", reason="envelope"
        ) from None
    try:
        return WebhookEvent.from_json(payload)
    except ResponseValidationError as exc:
        raise WebhookVerificationError(
            f"signed body is not a valid event envelope: {exc}", reason="envelope"
        ) from None
