"""The emulator's world: its settings, its seeded chats and customers, and what it has seen."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._config import (
    DEFAULT_PER,
    DEFAULT_REQUESTS,
    non_negative,
    parse_rate,
    positive,
    positive_int,
)
from ._account import seed_account
from ._customers import seed_customers
from ._recording import Recording

if TYPE_CHECKING:
    from ._webhooks import WebhookSender

__all__ = ["EmulatorConfig", "EmulatorState", "Faults", "ServerLimit"]

STATUSES = ("new", "opened", "pending", "on-hold", "no communication", "closed")
_FIRST = ("Ann", "Bob", "Chen", "Dana", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jade")
_LAST = ("Smith", "Okafor", "Novak", "Garcia", "Kim", "Rossi", "Dubois", "Sato", "Ali", "Berg")
_TEXTS = (
    "Hi, I can't log in to my account.",
    "Where is my order #4411?",
    "Thanks, that fixed it!",
    "Can I change my plan to annual billing?",
    "The app crashes when I upload a photo.",
    "Is there a discount for nonprofits?",
)
_RATINGS = ("great", "average", "poor", None)
#: The documented roles, "superviser" spelled as the API spells it.
_ROLES = ("admin", "agent", "agentChatOnly", "superviser", "agent")


def _share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _http_url(_: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and (
        not isinstance(value, str) or not value.startswith(("http://", "https://"))
    ):
        raise ValueError(f"{attribute.name} must be an http(s) URL, got {value!r}")


def _choice(*allowed: str) -> Callable[[object, attrs.Attribute[str], object], None]:
    def check(_: object, attribute: attrs.Attribute[str], value: object) -> None:
        if value not in allowed:
            choices = " or ".join(map(repr, allowed))
            raise ValueError(f"{attribute.name} must be {choices}, got {value!r}")

    return check


def _kind(
    cls: type, *, none: bool = False
) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not (isinstance(value, cls) or (none and value is None)):
            wanted = f"a {cls.__name__}" + (" or None" if none else "")
            raise TypeError(f"{attribute.name} must be {wanted}, not {type(value).__name__}")

    return check


def _non_empty(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        # The value is a secret: never echoed.
        raise ValueError(f"{attribute.name} must be a non-empty string")


@attrs.frozen
class ServerLimit:
    """The emulator's rate limit: a strict sliding window, rejected requests counted."""

    requests: int = attrs.field(default=DEFAULT_REQUESTS, validator=positive_int)
    per: float = attrs.field(default=DEFAULT_PER, validator=positive)

    @classmethod
    def parse(cls, text: str) -> ServerLimit:
        """Read ``"N/S"`` (``"120/60"``: 120 requests per 60 seconds)."""
        return cls(*parse_rate(text))


@attrs.frozen
class Faults:
    """What can go wrong, on purpose, as shares of requests (0.0 to 1.0) and seconds.

    Attributes:
        server_errors: Share answered 500/502/503.
        dropped: Share whose connection is cut after the headers, before the body.
        truncated: Share answered 200 with the JSON body cut in half.
        latency: Seconds added to every answer.
        jitter: Up to this many seconds more, at random.
    """

    server_errors: float = attrs.field(default=0.0, validator=_share)
    dropped: float = attrs.field(default=0.0, validator=_share)
    truncated: float = attrs.field(default=0.0, validator=_share)
    latency: float = attrs.field(default=0.0, validator=non_negative)
    jitter: float = attrs.field(default=0.0, validator=non_negative)

    def __str__(self) -> str:
        """``"5xx 1.0%, dropped connections 1.0%, latency 0.005 s (+ up to 0.02 s)"``."""
        shares = {
            "5xx": self.server_errors,
            "dropped connections": self.dropped,
            "truncated bodies": self.truncated,
        }
        injected = [f"{name} {share:.1%}" for name, share in shares.items() if share]
        if self.latency or self.jitter:
            injected.append(f"latency {self.latency:g} s (+ up to {self.jitter:g} s)")
        return ", ".join(injected) if injected else "none"


@attrs.frozen
class EmulatorConfig:
    """How the emulator behaves.

    Attributes:
        api_key: The only key it accepts.
        chats: How many chats it seeds.
        rate_limit: The per-key limit, or ``None`` for none.
        faults: Injected failures.
        payload_style: ``"spec"`` (integer timestamps, agents as a list, ``"on-hold"``;
            customers as the newer pages show them: numeric-string timestamps, custom data
            an object) or ``"legacy"`` (decimal-string timestamps, agents as one object,
            ``"on hold"`` as the only on-hold spelling it accepts; customers as the older
            pages: integer timestamps, custom data a ``[{property, value}]`` list).
        error_style: ``"older"`` (one specific entry) or ``"newer"`` (``invalid_request`` first).
        seed: Seed of the chat data and of the fault dice.
        webhook_url: Where to POST a webhook for every change the emulator applies (status,
            assignee, snooze, rating, new chat, new message, customers), or ``None``.
        webhook_signing_key: The key deliveries are signed with (``X-HelpCrunch-Signature``).
        webhook_attempts: Deliveries tried per event at most, the first one included.
        webhook_backoff: Seconds before the first redelivery; each next wait doubles.
    """

    api_key: str = "emulator-key"
    chats: int = attrs.field(default=500, validator=positive_int)
    rate_limit: ServerLimit | None = attrs.field(
        default=ServerLimit(), validator=_kind(ServerLimit, none=True)
    )
    faults: Faults = attrs.field(default=Faults(), validator=_kind(Faults))
    payload_style: Literal["spec", "legacy"] = attrs.field(
        default="spec", validator=_choice("spec", "legacy")
    )
    error_style: Literal["older", "newer"] = attrs.field(
        default="older", validator=_choice("older", "newer")
    )
    seed: int = 0
    webhook_url: str | None = attrs.field(default=None, validator=_http_url)
    webhook_signing_key: str = attrs.field(
        default="emulator-signing-key", repr=False, validator=_non_empty
    )
    webhook_attempts: int = attrs.field(default=5, validator=positive_int)
    webhook_backoff: float = attrs.field(default=0.5, validator=positive)


class EmulatorState:
    """Chats, the rate-limit window and counters.

    The app mutates chats from its own event loop only; ``lock`` guards what other threads
    read while it runs (the counters) and what concurrent requests reserve (new ids).
    """

    FIRST_ID = 5_215_700

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.random = random.Random(config.seed)
        now = int(time.time())
        self.chats: dict[int, dict[str, Any]] = {}
        self.agents = [
            {
                "id": i,
                "name": f"{_FIRST[i]} {_LAST[-i]}",
                "email": f"agent{i}@example.com",
                "role": _ROLES[i - 1],
            }
            for i in range(1, 6)
        ]
        self.departments = [{"id": 1, "name": "Support"}, {"id": 2, "name": "Billing"}]
        #: Members of each department, by agent id.
        self.department_agents = {1: [1, 2, 3], 2: [1, 4, 5]}
        #: Messages posted through the API, by chat id (the seeded history is generated).
        self.messages: dict[int, list[dict[str, Any]]] = {}
        self.next_message_id = 10**10
        #: The webhook sender (its counters: delivered, given_up, dropped), when configured.
        self.webhooks: WebhookSender | None = None
        for i in range(config.chats):
            self.chats[self.FIRST_ID + i] = self.seed_chat(self.FIRST_ID + i, now)
        self.next_id = self.FIRST_ID + config.chats
        #: Customers by id (those of the seeded chats, and created ones), their events.
        self.customers = seed_customers(self.chats.values(), config.seed)
        self.next_customer_id = max(self.customers, default=0) + 10_000
        self.customer_events: list[dict[str, Any]] = []
        #: The organization (``teamOnline``, ``chatEnabled``) and its applications.
        self.organization, self.applications = seed_account()
        #: Agents unsubscribed from the newsletters, by id.
        self.unsubscribed_agents: set[int] = set()
        # Arrival times of every authenticated request, 429s included, for the window.
        self.arrivals: deque[float] = deque()
        self.requests = 0
        self.rejected = 0
        self.max_in_window = 0
        #: The latest requests received and webhook events caused, for tests.
        self.recording = Recording()

    def seed_chat(self, chat_id: int, now: int) -> dict[str, Any]:
        """A realistic chat in wire form, from the seeded dice."""
        rnd = self.random
        created = now - rnd.randint(3600, 30 * 86400)
        last = created + rnd.randint(60, 3000)
        status = rnd.choice(STATUSES[:5])
        agent = rnd.choice(self.agents)
        first, last_name = rnd.choice(_FIRST), rnd.choice(_LAST)
        customer_id = 1000 + chat_id % 9000
        return {
            "id": chat_id,
            "status": status,
            "closedBy": None,
            "closedAt": None,
            "createdAt": created,
            "lastMessageAt": last,
            "lastCustomerMessageAt": last - rnd.randint(0, 50),
            "snoozedUntil": None,
            "rating": rnd.choice(_RATINGS),
            "lastMessageText": rnd.choice(_TEXTS),
            "lastMessageId": chat_id * 10 + 3,
            "lastCommunicatedAgentId": agent["id"],
            "agents": [agent],
            "customer": {
                "id": customer_id,
                "name": f"{first} {last_name}",
                "email": f"{first.lower()}.{last_name.lower()}{customer_id}@example.com",
                "userId": f"user-{customer_id}",
            },
            "assignee": agent,
            "department": rnd.choice(self.departments),
            "applicationId": 1,
            "readByAgent": True,
            "readByCustomer": rnd.random() < 0.5,
        }

    def add_message(
        self, chat: dict[str, Any], text: str, agent: dict[str, Any] | None, *, private: bool
    ) -> dict[str, Any]:
        """Record a message posted into ``chat`` and update the chat's last-message fields."""
        now = time.time()
        with self.lock:
            message_id = self.next_message_id
            self.next_message_id += 1
        message = {
            "id": message_id,
            "text": text,
            "type": "private" if private else "message",
            "agent": agent,
            "createdAt": now,
        }
        self.messages.setdefault(chat["id"], []).append(message)
        if not private:  # a note is for agents: the chat's visible history does not change
            chat.update(lastMessageText=text, lastMessageId=message_id, lastMessageAt=int(now))
            if agent is None:
                chat["lastCustomerMessageAt"] = int(now)
            elif all(a["id"] != agent["id"] for a in chat["agents"]):
                chat["agents"] = [*chat["agents"], agent]
        return message

    def admit(self, now: float) -> bool:
        """Count a request from the key; ``False`` if it is over the limit (it still counts)."""
        with self.lock:
            self.requests += 1
            limit = self.config.rate_limit
            if limit is None:
                return True
            while self.arrivals and now - self.arrivals[0] >= limit.per:
                self.arrivals.popleft()
            admitted = len(self.arrivals) < limit.requests
            self.arrivals.append(now)
            self.max_in_window = max(self.max_in_window, len(self.arrivals))
            if not admitted:
                self.rejected += 1
            return admitted

    def stats(self) -> dict[str, int]:
        """Requests seen, 429s answered, and the most requests seen in one window."""
        with self.lock:
            return {
                "requests": self.requests,
                "rejected": self.rejected,
                "max_in_window": self.max_in_window,
            }
