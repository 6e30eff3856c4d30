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
    LimiterTimeoutError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from ._journal import Journal
from ._limiter import RateLimiter, RateLimitInfo, TokenBucketLimiter, rate_limit_info
from ._models import Agent, Chat, ChatStatus, Customer, Department, Filter, Message

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Agent",
    "AuthenticationError",
    "BadRequestError",
    "BulkResult",
    "Chat",
    "ChatOutcome",
    "ChatStatus",
    "Chats",
    "ClientStats",
    "Customer",
    "Department",
    "ErrorDetail",
    "Filter",
    "HelpCrunch",
    "HelpCrunchError",
    "Journal",
    "LimiterTimeoutError",
    "Message",
    "NotFoundError",
    "OutcomeStream",
    "Progress",
    "RateLimit",
    "RateLimitError",
    "RateLimitInfo",
    "RateLimiter",
    "ResponseValidationError",
    "Retry",
    "ServerError",
    "TokenBucketLimiter",
    "rate_limit_info",
]
