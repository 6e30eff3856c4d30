"""The emulator's world: its settings, its seeded chats, and what it has seen."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from typing import Any, Literal

import attrs

from .._config import non_negative, positive, positive_int

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


def _share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


@attrs.frozen
class ServerLimit:
    """The emulator's rate limit: a strict sliding window, rejected requests counted."""

    requests: int = attrs.field(default=120, validator=positive_int)
    per: float = attrs.field(default=60.0, validator=positive)

    @classmethod
    def parse(cls, text: str) -> ServerLimit:
        """Read ``"N/S"`` (``"120/60"``: 120 requests per 60 seconds)."""
        try:
            requests, per = text.split("/")
            return cls(int(requests), float(per))
        except (ValueError, TypeError):
            raise ValueError(f"expected a rate as N/S, like 120/60, got {text!r}") from None


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


@attrs.frozen
class EmulatorConfig:
    """How the emulator behaves.

    Attributes:
        api_key: The only key it accepts.
        chats: How many chats it seeds.
        rate_limit: The per-key limit, or ``None`` for none.
        faults: Injected failures.
        payload_style: ``"spec"`` (integer timestamps, agents as a list, ``"on-hold"``) or
            ``"legacy"`` (decimal-string timestamps, agents as one object, and ``"on hold"``
            as the only on-hold spelling it accepts).
        error_style: ``"older"`` (one specific entry) or ``"newer"`` (``invalid_request`` first).
        seed: Seed of the chat data and of the fault dice.
    """

    api_key: str = "emulator-key"
    chats: int = attrs.field(default=500, validator=positive_int)
    rate_limit: ServerLimit | None = ServerLimit()
    faults: Faults = Faults()
    payload_style: Literal["spec", "legacy"] = "spec"
    error_style: Literal["older", "newer"] = "older"
    seed: int = 0


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
                "role": "admin" if i == 1 else "agent",
            }
            for i in range(1, 6)
        ]
        self.departments = [{"id": 1, "name": "Support"}, {"id": 2, "name": "Billing"}]
        for i in range(config.chats):
            self.chats[self.FIRST_ID + i] = self.seed_chat(self.FIRST_ID + i, now)
        self.next_id = self.FIRST_ID + config.chats
        # Arrival times of every authenticated request, 429s included, for the window.
        self.arrivals: deque[float] = deque()
        self.requests = 0
        self.rejected = 0
        self.max_in_window = 0

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
