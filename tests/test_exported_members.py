"""The public surface is exactly what ``__all__`` says, sorted, typed and documented."""

from __future__ import annotations

import inspect

import helpcrunch_async as hc

EXPECTED = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Agent",
    "AuthenticationError",
    "BadRequestError",
    "BulkItemDone",
    "BulkResult",
    "CallCompleted",
    "CallEvent",
    "CallFailed",
    "CallStarted",
    "Chat",
    "ChatOutcome",
    "ChatStatus",
    "Chats",
    "ChatsWithRawResponse",
    "ClientStats",
    "Customer",
    "Department",
    "ErrorDetail",
    "Event",
    "Filter",
    "HelpCrunch",
    "HelpCrunchError",
    "Journal",
    "LimiterWaited",
    "Message",
    "NotFoundError",
    "OutcomeStream",
    "Progress",
    "RateLimit",
    "RateLimitError",
    "RateLimited",
    "RateLimiter",
    "RawResponse",
    "RequestSent",
    "ResponseReceived",
    "ResponseValidationError",
    "Retry",
    "RetryScheduled",
    "ServerError",
    "TokenBucketLimiter",
    "TransportFailed",
]


def test_all_is_pinned_and_sorted():
    """__all__ lists the public names, sorted; adding one is a deliberate change here."""
    assert EXPECTED == hc.__all__
    assert sorted(hc.__all__) == hc.__all__


def test_exported_members_match_all():
    """Every public attribute of the package is in __all__ and vice versa."""
    public = {
        name
        for name, value in vars(hc).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(hc.__all__) == public


def test_every_public_name_is_documented():
    """Each public class has a docstring, and so do its public methods."""
    for name in hc.__all__:
        obj = getattr(hc, name)
        assert inspect.getdoc(obj), name
        for attr, member in vars(obj).items():
            if not attr.startswith("_") and inspect.isfunction(member):
                assert inspect.getdoc(member), f"{name}.{attr}"


def test_package_is_typed():
    """py.typed ships with the package."""
    from importlib.resources import files  # noqa: PLC0415

    assert files("helpcrunch_async").joinpath("py.typed").is_file()
