"""helpcrunch-async: the async Python SDK for the HelpCrunch REST API.

Example:
    >>> import helpcrunch_async as hc
    >>> async with hc.HelpCrunch(api_key="...") as client:  # doctest: +SKIP
    ...     chat = await client.chats.update_status(5215752, hc.ChatStatus.CLOSED)
"""

from ._bulk import BulkResult, ChatOutcome, OutcomeStream, Progress
from ._chats import Chats
from ._client import ClientStats, HelpCrunch
from ._config import RateLimit, Retry
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ErrorDetail,
    HelpCrunchError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from ._events import (
    BulkItemDone,
    CallCompleted,
    CallEvent,
    CallFailed,
    CallStarted,
    Event,
    LimiterWaited,
    RateLimited,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    TransportFailed,
)
from ._journal import Journal
from ._limiter import RateLimiter, TokenBucketLimiter
from ._models import Agent, Chat, ChatStatus, Customer, Department, Filter, Message
from ._raw import ChatsWithRawResponse, RawResponse

__version__ = "0.1.0"

__all__ = [
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
