"""helpcrunch-async: the async Python SDK for the HelpCrunch REST API.

Examples:
    >>> import helpcrunch_async as hc
    >>> async with hc.HelpCrunch(api_key="...") as client:  # doctest: +SKIP
    ...     chat = await client.chats.update_status(5215752, hc.ChatStatus.CLOSED)
"""

from .__version__ import __version__ as __version__
from ._bulk._engine import OutcomeStream
from ._bulk._journal import Journal
from ._bulk._outcomes import BulkResult, ChatOutcome, CustomerOutcome, Progress
from ._bulk._protocol import BulkJournal, Claim, JournalSession
from ._client import HelpCrunch
from ._config import RateLimit, Retry
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BulkAbortedError,
    ClientClosedError,
    ErrorDetail,
    HelpCrunchError,
    JournalError,
    LimiterTimeoutError,
    LimiterUnavailableError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    WebhookVerificationError,
)
from ._limit._headers import RateLimitHeaders, parse_rate_limit_headers
from ._limit._local import LocalRateLimiter
from ._limit._protocol import RateLimiter
from ._models import (
    Agent,
    AgentRole,
    Application,
    Chat,
    ChatRating,
    ChatStatus,
    Customer,
    CustomerEvent,
    Department,
    Device,
    Filter,
    Location,
    Message,
    Organization,
    Tag,
)
from ._resources._account import Applications, OrganizationResource
from ._resources._agents import Agents
from ._resources._bulk_run import BulkOptions
from ._resources._chats import Chats
from ._resources._customer_fields import CustomerFields
from ._resources._customers import Customers
from ._resources._departments import Departments
from ._resources._events import CustomerEvents
from ._resources._messages import Messages
from ._resources._raw import (
    ChatsWithRawResponse,
    CustomersWithRawResponse,
    MessagesWithRawResponse,
    RawResponse,
)
from ._send._events import (
    BulkItemDone,
    CallCompleted,
    CallEvent,
    CallFailed,
    CallStarted,
    ClientEvent,
    LimiterWaited,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    Throttled,
    TransportFailed,
)
from ._send._observe import ClientStats

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Agent",
    "AgentRole",
    "Agents",
    "Application",
    "Applications",
    "AuthenticationError",
    "BadRequestError",
    "BulkAbortedError",
    "BulkItemDone",
    "BulkJournal",
    "BulkOptions",
    "BulkResult",
    "CallCompleted",
    "CallEvent",
    "CallFailed",
    "CallStarted",
    "Chat",
    "ChatOutcome",
    "ChatRating",
    "ChatStatus",
    "Chats",
    "ChatsWithRawResponse",
    "Claim",
    "ClientClosedError",
    "ClientEvent",
    "ClientStats",
    "Customer",
    "CustomerEvent",
    "CustomerEvents",
    "CustomerFields",
    "CustomerOutcome",
    "Customers",
    "CustomersWithRawResponse",
    "Department",
    "Departments",
    "Device",
    "ErrorDetail",
    "Filter",
    "HelpCrunch",
    "HelpCrunchError",
    "Journal",
    "JournalError",
    "JournalSession",
    "LimiterTimeoutError",
    "LimiterUnavailableError",
    "LimiterWaited",
    "LocalRateLimiter",
    "Location",
    "Message",
    "Messages",
    "MessagesWithRawResponse",
    "NotFoundError",
    "Organization",
    "OrganizationResource",
    "OutcomeStream",
    "Progress",
    "RateLimit",
    "RateLimitError",
    "RateLimitHeaders",
    "RateLimiter",
    "RawResponse",
    "RequestSent",
    "ResponseReceived",
    "ResponseValidationError",
    "Retry",
    "RetryScheduled",
    "ServerError",
    "Tag",
    "Throttled",
    "TransportFailed",
    "WebhookVerificationError",
    "parse_rate_limit_headers",
]
"""Every public name, sorted; ``tests/test_exported_members.py`` checks it."""

# Tracebacks and reprs show the public path (helpcrunch_async.NotFoundError), as httpx does.
for _name in __all__:
    _member = globals()[_name]
    if getattr(_member, "__module__", "").startswith("helpcrunch_async."):
        _member.__module__ = __name__
del _name, _member
