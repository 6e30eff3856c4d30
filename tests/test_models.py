"""Chat and its parts, built from every payload variant the docs show."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpcrunch_async as hc
from tests.conftest import chat_payload

UTC = timezone.utc
T = TypeVar("T")


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (1597758468, datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC)),
        ("1597758468", datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC)),
        ("1597758468.250", datetime(2020, 8, 18, 13, 47, 48, 250000, tzinfo=UTC)),
        (1597758468.5, datetime(2020, 8, 18, 13, 47, 48, 500000, tzinfo=UTC)),
        ("2020-08-18T13:47:48Z", datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_timestamps_in_every_wire_form(wire, expected):
    """Ints, numeric strings, decimal strings and null all become aware UTC datetimes."""
    chat = hc.Chat.from_json(chat_payload(closedAt=wire))

    assert expected == chat.closed_at
    if expected is not None:
        assert UTC == chat.closed_at.tzinfo


def test_full_payload_maps_to_snake_case_fields():
    """Every documented field lands in its snake_case attribute, nested objects typed."""
    chat = hc.Chat.from_json(chat_payload())

    assert 5215752 == chat.id
    assert hc.ChatStatus.CLOSED is chat.status
    assert "agent" == chat.closed_by
    assert "great" == chat.rating
    assert "Thanks!" == chat.last_message_text
    assert 991 == chat.last_message_id
    assert 12 == chat.last_communicated_agent_id
    assert (hc.Agent(12, "Ann", "ann@example.com", "admin"),) == chat.agents
    assert hc.Customer(77, "Bob", "bob@example.com", "u-77") == chat.customer
    assert hc.Agent(12, "Ann", "ann@example.com", "admin") == chat.assignee
    assert hc.Department(3, "Support") == chat.department
    assert datetime(2020, 8, 18, 13, 40, tzinfo=UTC) == chat.created_at


def test_agents_as_single_object():
    """One doc version sends ``agents`` as one object: it becomes a one-item sequence."""
    chat = hc.Chat.from_json(chat_payload(agents={"id": 4, "name": "Zed"}))

    assert (hc.Agent(4, "Zed"),) == chat.agents


@pytest.mark.parametrize("agents", [None, [], {}])
def test_agents_missing_or_empty_is_empty_sequence(agents):
    """``agents`` is always a sequence, never None."""
    assert () == hc.Chat.from_json(chat_payload(agents=agents)).agents


def test_minimal_payload_and_nulls():
    """Only ``id`` is required; missing and null optional fields are None."""
    chat = hc.Chat.from_json({"id": 1, "assignee": None, "department": None, "customer": None})

    assert 1 == chat.id
    assert chat.status is None
    assert chat.assignee is None
    assert chat.department is None
    assert chat.customer is None
    assert chat.notes is None


def test_optional_fields_when_present():
    """notes, createdWith, applicationId, readByAgent, readByCustomer are read when sent."""
    chat = hc.Chat.from_json(
        chat_payload(
            notes="vip",
            createdWith="widget",
            applicationId="9",
            readByAgent=True,
            readByCustomer=0,
        )
    )

    assert ("vip", "widget", 9, True, False) == (
        chat.notes,
        chat.created_with,
        chat.application_id,
        chat.read_by_agent,
        chat.read_by_customer,
    )


def test_unknown_fields_are_kept_in_raw_only():
    """New server fields never break parsing and stay reachable through ``raw``."""
    payload = chat_payload(brandNewField={"x": 1})

    chat = hc.Chat.from_json(payload)

    assert {"x": 1} == chat.raw["brandNewField"]


def test_envelope_with_data_is_unwrapped():
    """A ``{"data": chat}`` envelope parses like the bare chat."""
    assert 9 == hc.Chat.from_json({"data": chat_payload(9)}).id


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("on-hold", hc.ChatStatus.ON_HOLD),
        ("on hold", hc.ChatStatus.ON_HOLD),
        ("onhold", hc.ChatStatus.ON_HOLD),
        ("open", hc.ChatStatus.OPENED),
        ("opened", hc.ChatStatus.OPENED),
        ("no communication", hc.ChatStatus.NO_COMMUNICATION),
        ("empty", hc.ChatStatus.EMPTY),
        ("archived-by-robot", "archived-by-robot"),
        (3, "3"),
    ],
)
def test_status_spellings_and_unknown_values(wire, expected):
    """Every documented spelling is understood; an unknown status is kept as its string."""
    assert expected == hc.Chat.from_json(chat_payload(status=wire)).status


def test_chat_is_frozen():
    """Models are immutable values."""
    chat = hc.Chat.from_json(chat_payload())

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        chat.status = "opened"  # type: ignore[misc]


def test_raw_does_not_take_part_in_equality():
    """Two chats with the same fields are equal whatever extra fields came with them."""
    assert hc.Chat.from_json(chat_payload(a=1)) == hc.Chat.from_json(chat_payload(b=2))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([], "expected a chat object"),
        ("oops", "expected a chat object"),
        ({"status": "closed"}, r"chat\.id: missing"),
        ({"id": "abc"}, r"chat\.id"),
        ({"id": True}, r"chat\.id"),
        (chat_payload(closedAt="yesterday"), r"chat\.closedAt"),
        (chat_payload(closedAt=True), r"chat\.closedAt"),
        (chat_payload(closedAt=float("nan")), r"chat\.closedAt"),
        (chat_payload(agents="ann"), r"chat\.agents"),
        (chat_payload(agents=[1, 2]), r"chat\.agents"),
        (chat_payload(customer="bob"), r"chat\.customer"),
        (chat_payload(customer={"id": "x"}), r"customer\.id"),
        (chat_payload(readByAgent="maybe"), r"chat\.readByAgent"),
        (chat_payload(lastMessageText=["a"]), r"chat\.lastMessageText"),
        ({"id": 1, "status": ["closed"]}, r"chat\.status"),
    ],
)
def test_impossible_payloads_raise_response_validation_error(payload, match):
    """A payload that cannot be a Chat raises the SDK's error naming the field, never KeyError."""
    with pytest.raises(hc.ResponseValidationError, match=match):
        hc.Chat.from_json(payload)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("on hold", hc.ChatStatus.ON_HOLD),
        ("onhold", hc.ChatStatus.ON_HOLD),
        ("on-hold", hc.ChatStatus.ON_HOLD),
        ("On_Hold", hc.ChatStatus.ON_HOLD),
        ("open", hc.ChatStatus.OPENED),
        (" CLOSED ", hc.ChatStatus.CLOSED),
        ("no-communication", hc.ChatStatus.NO_COMMUNICATION),
        (hc.ChatStatus.PENDING, hc.ChatStatus.PENDING),
    ],
)
def test_status_input_is_normalised(given, expected):
    """User spellings map to one member, both through parse() and the enum constructor."""
    assert expected is hc.ChatStatus.parse(given)
    assert expected is hc.ChatStatus(given)


def test_unknown_status_input_lists_valid_values():
    """A typo is a ValueError that names the value and lists what is valid."""
    with pytest.raises(ValueError, match=r"'clsoed'.*new, opened, pending, on-hold"):
        hc.ChatStatus.parse("clsoed")


def test_empty_cannot_be_sent():
    """EMPTY is a response value only."""
    with pytest.raises(ValueError, match="EMPTY"):
        hc.ChatStatus.parse("empty")


def test_non_string_status_is_type_error():
    """A status of the wrong type is a TypeError."""
    with pytest.raises(TypeError, match="int"):
        hc.ChatStatus.parse(3)  # type: ignore[arg-type]


def test_status_str_is_its_wire_value():
    """str() of a status is what goes on the wire."""
    assert "on-hold" == str(hc.ChatStatus.ON_HOLD)


# --- hostile wire data: every converter returns a value or raises ResponseValidationError --

#: Every field ``Chat.from_json`` converts, by wire name.
CHAT_FIELDS = (
    "id",
    "status",
    "closedBy",
    "closedAt",
    "createdAt",
    "lastMessageAt",
    "lastCustomerMessageAt",
    "snoozedUntil",
    "rating",
    "lastMessageText",
    "lastMessageId",
    "lastCommunicatedAgentId",
    "agents",
    "customer",
    "assignee",
    "department",
    "notes",
    "createdWith",
    "applicationId",
    "readByAgent",
    "readByCustomer",
)

#: Values a real (or hostile) server has sent, each one a crash or a freeze once.
HOSTILE_SCALARS: tuple[object, ...] = (
    "1e999999999",  # a billion-digit integer if converted naively: freezes the loop
    "-1e999999999",
    "1e-999999999",
    "²",  # str.isdigit() says yes, int() says no
    "١٢",  # Arabic-Indic digits: Python's parsers take them, JSON does not
    "9" * 5000,  # past Python's int digit limit
    "1_000",
    "NaN",
    "-Infinity",
    "0001-01-01T00:00:00+01:00",  # a date whose UTC is in year 0
    "9999-12-31T23:59:59-01:00",  # a date whose UTC is in year 10000
    "\x00",
    " ",
    2**64,
    -(2**63) - 1,
    10**5000,
    float("inf"),
    float("nan"),
    1e300,
    -1e300,
    True,
    [],
    {},
    [[[]]],
    {"id": "²"},
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
hostile = (
    st.sampled_from(HOSTILE_SCALARS)
    | st.from_regex(r"[+-]?[0-9]{0,25}(\.[0-9]{0,8})?([eE][+-]?[0-9]{1,12})?", fullmatch=True)
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | json_values
)


def parses_or_refuses(build: Callable[[Any], T], payload: object) -> T | Exception:
    """The outcome of a model's from_json: a model, or ResponseValidationError."""
    try:
        return build(payload)
    except hc.ResponseValidationError as exc:
        return exc


@pytest.mark.parametrize("field", CHAT_FIELDS)
@pytest.mark.parametrize(
    "value", HOSTILE_SCALARS, ids=[f"v{i}" for i in range(len(HOSTILE_SCALARS))]
)
def test_every_field_takes_every_hostile_value(field, value):
    """Each known hostile value in each field gives a Chat or ResponseValidationError, at once."""
    outcome = parses_or_refuses(hc.Chat.from_json, chat_payload(**{field: value}))

    assert isinstance(outcome, hc.Chat | hc.ResponseValidationError)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(CHAT_FIELDS), value=hostile)
def test_chat_from_json_is_total(field, value):
    """Any value in any field: a Chat or ResponseValidationError, never another exception."""
    outcome = parses_or_refuses(hc.Chat.from_json, chat_payload(**{field: value}))

    assert isinstance(outcome, hc.Chat | hc.ResponseValidationError)


@settings(max_examples=200, deadline=None)
@given(
    payload=json_values
    | st.dictionaries(st.sampled_from(["id", "text", "from", "createdAt"]), hostile)
)
def test_message_from_json_is_total(payload):
    """Any payload: a Message or ResponseValidationError."""
    outcome = parses_or_refuses(hc.Message.from_json, payload)

    assert isinstance(outcome, hc.Message | hc.ResponseValidationError)


@settings(max_examples=200, deadline=None)
@given(value=hostile)
def test_timestamps_are_aware_and_in_range_or_refused(value):
    """A timestamp that parses is an aware UTC datetime; anything else is refused by name."""
    outcome = parses_or_refuses(hc.Chat.from_json, chat_payload(closedAt=value))

    if isinstance(outcome, hc.Chat):
        assert outcome.closed_at is None or timezone.utc == outcome.closed_at.tzinfo
    else:
        assert "chat.closedAt" in str(outcome)
        assert len(str(outcome)) < 200  # the value is cut short in the message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("closedAt", "1e999999999"),
        ("closedAt", "0001-01-01T00:00:00+01:00"),
        ("id", "²"),
        ("id", "9" * 5000),
        ("id", 2**63),
        ("id", "١٢"),
        ("lastMessageText", 10**5000),
    ],
    ids=["huge-exponent", "year-zero", "superscript", "5000-digits", "2**63", "arabic", "10**5000"],
)
def test_values_that_crashed_or_froze_the_parser(field, value):
    """Each of these once froze the loop or raised a raw ValueError/OverflowError."""
    with pytest.raises(hc.ResponseValidationError, match=rf"chat\.{field}"):
        hc.Chat.from_json(chat_payload(**{field: value}))


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("-1", datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("1597758468.0000004", datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC)),
        ("1597758468.123456", datetime(2020, 8, 18, 13, 47, 48, 123456, tzinfo=UTC)),
        ("253402300798.999999", datetime(9999, 12, 31, 23, 59, 58, 999999, tzinfo=UTC)),
        ("1.5974e9", datetime(2020, 8, 14, 10, 13, 20, tzinfo=UTC)),
        (253402300799, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (-62135596800, datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamp_edges(wire, expected):
    """Negative, sub-microsecond, exponent forms and the calendar's ends parse exactly."""
    assert expected == hc.Chat.from_json(chat_payload(closedAt=wire)).closed_at


def test_timestamps_ignore_the_callers_decimal_context():
    """A caller's decimal precision or traps do not change how timestamps parse."""
    with decimal.localcontext() as context:
        context.prec = 3
        context.traps[decimal.Inexact] = True
        chat = hc.Chat.from_json(chat_payload(closedAt="1597758468.250"))

    assert datetime(2020, 8, 18, 13, 47, 48, 250000, tzinfo=UTC) == chat.closed_at


@pytest.mark.parametrize(
    ("wire", "expected"), [("12", 12), (" -7 ", -7), (3.0, 3), (2**63 - 1, 2**63 - 1)]
)
def test_integers_in_every_wire_form(wire, expected):
    """Ids as ints, integral floats and ASCII digit strings, within 64 bits."""
    assert expected == hc.Chat.from_json(chat_payload(lastMessageId=wire)).last_message_id


# --- search filters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), 2**64, -(2**63) - 1, "\ud800"]
)
def test_filter_values_that_cannot_be_encoded_are_refused(value):
    """NaN, infinities, ints past 64 bits and lone surrogates are ValueErrors at once."""
    with pytest.raises(ValueError, match="filter"):
        hc.Filter("chats.lastMessageAt", "<", value)


def test_filter_field_that_cannot_be_encoded_is_refused():
    """A field name with a lone surrogate is a ValueError."""
    with pytest.raises(ValueError, match="filter field"):
        hc.Filter("chats.\udc80", "=", 1)


@pytest.mark.parametrize(
    ("wire", "ok"),
    [(-(2**63), True), (-(2**63) - 1, False), (2**63 - 1, True), (2**63, False)],
)
def test_integer_bounds_are_the_signed_64_bit_range(wire, ok):
    """Exactly the signed 64-bit integers are ids; one past either end is refused."""
    payload = chat_payload(lastMessageId=wire)
    if ok:
        assert wire == hc.Chat.from_json(payload).last_message_id
    else:
        with pytest.raises(hc.ResponseValidationError, match="64-bit"):
            hc.Chat.from_json(payload)


def test_timestamp_text_is_bounded_in_length():
    """A numeric string of 64 characters parses; 65 is refused before any parsing."""
    assert hc.Chat.from_json(chat_payload(closedAt="0" * 54 + "1597758468")).closed_at
    with pytest.raises(hc.ResponseValidationError, match="65 characters"):
        hc.Chat.from_json(chat_payload(closedAt="0" * 55 + "1597758468"))
