"""helpcrunch-async: the async Python SDK for the HelpCrunch REST API.

Example:
    >>> import helpcrunch_async as hc
    >>> async with hc.HelpCrunch(api_key="...") as client:  # doctest: +SKIP
    ...     chat = await client.chats.update_status(5215752, hc.ChatStatus.CLOSED)
"""

from ._agents import Agents
from ._bulk import BulkResult, ChatOutcome, OutcomeStream, Progress
from ._chats import Chats
from ._client import ClientStats, HelpCrunch
from ._config import RateLimit, Retry
from ._departments import Departments
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
    WebhookVerificationError,
)
from ._journal import Journal
from ._limiter import RateLimiter, TokenBucketLimiter
from ._messages import Messages
from ._models import Agent, AgentRole, Chat, ChatStatus, Customer, Department, Filter, Message

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Agent",
    "AgentRole",
    "Agents",
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
    "Departments",
    "ErrorDetail",
    "Filter",
    "HelpCrunch",
    "HelpCrunchError",
    "Journal",
    "Message",
    "Messages",
    "NotFoundError",
    "OutcomeStream",
    "Progress",
    "RateLimit",
    "RateLimitError",
    "RateLimiter",
    "ResponseValidationError",
    "Retry",
    "ServerError",
    "TokenBucketLimiter",
    "WebhookVerificationError",
]
