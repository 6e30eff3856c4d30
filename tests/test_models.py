"""Chat and its parts, built from every payload variant the docs show."""

from __future__ import annotations

import decimal
import json
import types
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpcrunch_async as hc
from helpcrunch_async._models import validate_id
from helpcrunch_async._models._enums import _forgiving, _open_enum, spellings
from helpcrunch_async._models._wire import MAX_SCALAR_TEXT
from tests.conftest import chat_payload

UTC = timezone.utc
T = TypeVar("T")


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (1597758468, datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC)),
        ("1597758468", datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC)),
        ("1597758468.250", datetime(2020, 8, 18, 13, 47, 48, 250000, tzinfo=UTC)),
        (" 1597758468.999999 ", datetime(2020, 8, 18, 13, 47, 48, 999999, tzinfo=UTC)),
        (1597758468.5, datetime(2020, 8, 18, 13, 47, 48, 500000, tzinfo=UTC)),
        ("2020-08-18T13:47:48Z", datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC)),
        ("2020-08-18T13:47:48", datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC)),  # no zone: UTC
        ("2020-08-18T15:47:48+02:00", datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_timestamps_in_every_wire_form(wire, expected, local_time_far_from_utc):
    """Ints, numeric, decimal and ISO strings, and null, become aware UTC datetimes (in UTC
    whatever the machine's own zone is)."""
    chat = hc.Chat.from_json(chat_payload(closedAt=wire))

    assert expected == chat.closed_at
    if chat.closed_at is not None:
        assert timedelta(0) == chat.closed_at.utcoffset()


def test_a_float_timestamp_reads_like_its_decimal_text():
    """A float is read as the decimal the server wrote, like the same number in a string."""
    as_float = hc.Chat.from_json(chat_payload(closedAt=1597758468.0000045)).closed_at
    as_text = hc.Chat.from_json(chat_payload(closedAt="1597758468.0000045")).closed_at

    assert as_text == as_float


def test_full_payload_maps_to_snake_case_fields():
    """Every documented field lands in its snake_case attribute, nested objects typed."""
    payload = chat_payload(
        snoozedUntil=1597759000,
        notes="vip",
        createdWith="widget",
        applicationId=9,
        readByAgent=True,
        readByCustomer=False,
    )
    ann = hc.Agent(12, "Ann", "ann@example.com", "admin")

    chat = hc.Chat.from_json(payload)

    assert (
        hc.Chat(
            id=5215752,
            status=hc.ChatStatus.CLOSED,
            closed_by="agent",
            closed_at=datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC),
            created_at=datetime(2020, 8, 18, 13, 40, tzinfo=UTC),
            last_message_at=datetime(2020, 8, 18, 13, 46, 40, tzinfo=UTC),
            last_customer_message_at=datetime(2020, 8, 18, 13, 45, tzinfo=UTC),
            snoozed_until=datetime(2020, 8, 18, 13, 56, 40, tzinfo=UTC),
            rating="great",
            last_message_text="Thanks!",
            last_message_id=991,
            last_communicated_agent_id=12,
            agents=(ann,),
            customer=hc.Customer(77, "Bob", "bob@example.com", "u-77"),
            assignee=ann,
            department=hc.Department(3, "Support"),
            notes="vip",
            created_with="widget",
            application_id=9,
            read_by_agent=True,
            read_by_customer=False,
        )
        == chat
    )
    assert payload == chat.raw


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


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (9, 9),
        ("9", 9),
        (" 9 ", 9),
        ("-5", -5),
        (" -7 ", -7),
        (9.0, 9),
        (2**63 - 1, 2**63 - 1),
        ("", None),
        (None, None),
    ],
)
def test_integers_in_every_wire_form(wire, expected):
    """Integer fields take ints, integral floats and ASCII digit strings within 64 bits; ""
    and null are None."""
    assert expected == hc.Chat.from_json(chat_payload(applicationId=wire)).application_id


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("1", True),
        ("0", False),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        (None, None),
    ],
)
def test_flags_in_every_wire_form(wire, expected):
    """Flags take booleans, 0/1 as numbers or strings, and "true"/"false" in any case."""
    assert expected is hc.Chat.from_json(chat_payload(readByAgent=wire)).read_by_agent


@pytest.mark.parametrize(
    ("wire", "expected"), [("hi", "hi"), (42, "42"), (1.5, "1.5"), (None, None)]
)
def test_texts_in_every_wire_form(wire, expected):
    """Text fields take strings, and numbers as their text."""
    assert expected == hc.Chat.from_json(chat_payload(lastMessageText=wire)).last_message_text


def test_unknown_fields_are_kept_in_raw_only():
    """New server fields never break parsing and stay reachable through ``raw``."""
    payload = chat_payload(brandNewField={"x": 1})

    chat = hc.Chat.from_json(payload)

    assert {"x": 1} == chat.raw["brandNewField"]


def test_envelope_with_data_is_unwrapped():
    """A ``{"data": chat}`` envelope parses like the bare chat."""
    assert 9 == hc.Chat.from_json({"data": chat_payload(9)}).id


#: Every spelling of a status the docs or users write, and the member it means.
SPELLINGS = [
    ("on-hold", hc.ChatStatus.ON_HOLD),
    ("on hold", hc.ChatStatus.ON_HOLD),
    ("onhold", hc.ChatStatus.ON_HOLD),
    ("On_Hold", hc.ChatStatus.ON_HOLD),
    ("open", hc.ChatStatus.OPENED),
    ("opened", hc.ChatStatus.OPENED),
    (" CLOSED ", hc.ChatStatus.CLOSED),
    ("no communication", hc.ChatStatus.NO_COMMUNICATION),
    ("no-communication", hc.ChatStatus.NO_COMMUNICATION),
    ("new", hc.ChatStatus.NEW),
    ("pending", hc.ChatStatus.PENDING),
]


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        *SPELLINGS,
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
    ("changes", "message"),
    [
        ({"id": "abc"}, "chat.id: expected an integer, got 'abc'"),
        ({"id": True}, "chat.id: expected an integer, got True"),
        ({"id": 1.5}, "chat.id: expected an integer, got 1.5"),
        ({"applicationId": "--5"}, "chat.applicationId: expected an integer, got '--5'"),
        ({"applicationId": "\u00b2"}, "chat.applicationId: expected an integer, got '\u00b2'"),
        ({"applicationId": "1" * 20}, f"chat.applicationId: expected an integer, got '{'1' * 20}'"),
        ({"closedAt": "yesterday"}, "chat.closedAt: expected a timestamp, got 'yesterday'"),
        ({"closedAt": True}, "chat.closedAt: expected a timestamp, got bool"),
        ({"closedAt": float("nan")}, "chat.closedAt: timestamp out of range: nan"),
        ({"closedAt": [1]}, "chat.closedAt: expected a timestamp, got list"),
        ({"closedAt": 1e20}, "chat.closedAt: timestamp out of range: 1e+20"),
        ({"createdAt": "x"}, "chat.createdAt: expected a timestamp, got 'x'"),
        ({"lastMessageAt": "x"}, "chat.lastMessageAt: expected a timestamp, got 'x'"),
        (
            {"lastCustomerMessageAt": "x"},
            "chat.lastCustomerMessageAt: expected a timestamp, got 'x'",
        ),
        ({"snoozedUntil": "x"}, "chat.snoozedUntil: expected a timestamp, got 'x'"),
        ({"agents": "ann"}, "chat.agents: expected a list of agents, got str"),
        ({"agents": [1, 2]}, "chat.agents: expected agent objects, got int"),
        ({"customer": "bob"}, "chat.customer: expected a customer object or id, got str"),
        ({"assignee": 1.5}, "chat.assignee: expected an assignee object or id, got float"),
        ({"department": [3]}, "chat.department: expected a department object or id, got list"),
        ({"readByAgent": "maybe"}, "chat.readByAgent: expected a boolean, got 'maybe'"),
        ({"readByCustomer": 2}, "chat.readByCustomer: expected a boolean, got 2"),
        ({"lastMessageText": ["a"]}, "chat.lastMessageText: expected a string, got list"),
        ({"notes": True}, "chat.notes: expected a string, got bool"),
        ({"status": ["closed"]}, "chat.status: expected a status string, got list"),
        ({"customer": {"id": "x"}}, "customer.id: expected an integer, got 'x'"),
        ({"customer": {"name": [1]}}, "customer.name: expected a string, got list"),
        ({"customer": {"email": {}}}, "customer.email: expected a string, got dict"),
        ({"customer": {"userId": [1]}}, "customer.userId: expected a string, got list"),
        ({"assignee": {"id": "x"}}, "agent.id: expected an integer, got 'x'"),
        ({"agents": [{"name": [1]}]}, "agent.name: expected a string, got list"),
        ({"agents": [{"email": [1]}]}, "agent.email: expected a string, got list"),
        ({"agents": {"role": [1]}}, "agent.role: expected a string, got list"),
        ({"department": {"id": "x"}}, "department.id: expected an integer, got 'x'"),
        ({"department": {"name": [1]}}, "department.name: expected a string, got list"),
    ],
)
def test_impossible_fields_raise_response_validation_error(changes, message):
    """A known field of an impossible type raises the SDK's error naming the field and value."""
    with pytest.raises(hc.ResponseValidationError) as info:
        hc.Chat.from_json(chat_payload(**changes))

    assert message == str(info.value)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "expected a chat object, got list"),
        ("oops", "expected a chat object, got str"),
        ({"data": "oops"}, "chat.id: missing"),  # not an envelope: a chat without an id
        ({"status": "closed"}, "chat.id: missing"),
        ({"id": None}, "chat.id: missing"),
    ],
)
def test_payloads_that_are_no_chat(payload, message):
    """Not an object, or an object without an id, is the SDK's error, never KeyError."""
    with pytest.raises(hc.ResponseValidationError) as info:
        hc.Chat.from_json(payload)

    assert message == str(info.value)


def test_message_from_every_field():
    """A message's documented fields land in their attributes; the payload is kept in raw."""
    payload = {"id": "4", "text": "hi", "from": "agent", "createdAt": "1597758468", "extra": 1}

    message = hc.Message.from_json(payload)

    assert (
        hc.Message(
            id=4,
            text="hi",
            sender="agent",
            created_at=datetime(2020, 8, 18, 13, 47, 48, tzinfo=UTC),
        )
        == message
    )
    assert payload == message.raw


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (["x"], "expected a message object, got list"),
        ({"id": "x"}, "message.id: expected an integer, got 'x'"),
        ({"text": [1]}, "message.text: expected a string, got list"),
        ({"from": [1]}, "message.from: expected a string, got list"),
        ({"createdAt": "x"}, "message.createdAt: expected a timestamp, got 'x'"),
    ],
)
def test_impossible_messages_raise_response_validation_error(payload, message):
    """A message that is no object, or has a field of an impossible type, names the field."""
    with pytest.raises(hc.ResponseValidationError) as info:
        hc.Message.from_json(payload)

    assert message == str(info.value)


@pytest.mark.parametrize(
    ("given", "expected"), [*SPELLINGS, (hc.ChatStatus.PENDING, hc.ChatStatus.PENDING)]
)
def test_status_input_is_normalised(given, expected):
    """User spellings map to one member, both through parse() and the enum constructor."""
    assert expected is hc.ChatStatus.parse(given)
    assert expected is hc.ChatStatus(given)


VALID = "valid values: new, opened, pending, on-hold, no communication, closed"


@pytest.mark.parametrize("typo", ["clsoed", "xclosed", "closed!", ""])
def test_unknown_status_input_lists_valid_values(typo):
    """A typo is a ValueError that names the value and lists what is valid."""
    with pytest.raises(ValueError) as info:
        hc.ChatStatus.parse(typo)

    assert f"unknown chat status {typo!r}; {VALID}" == str(info.value)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("CLOSED", hc.ChatStatus.CLOSED),
        ("  Closed\t", hc.ChatStatus.CLOSED),
        ("on hold", hc.ChatStatus.ON_HOLD),
        ("On-Hold", hc.ChatStatus.ON_HOLD),
        ("ON_HOLD", hc.ChatStatus.ON_HOLD),
        ("onhold", hc.ChatStatus.ON_HOLD),
        ("No_Communication", hc.ChatStatus.NO_COMMUNICATION),
        ("no-communication", hc.ChatStatus.NO_COMMUNICATION),
        ("nocommunication", hc.ChatStatus.NO_COMMUNICATION),
        ("Open", hc.ChatStatus.OPENED),
    ],
)
def test_documented_spellings_in_any_case_and_separator_are_accepted(given, expected):
    """A documented spelling, its words joined by space, hyphen, underscore or nothing."""
    assert expected is hc.ChatStatus.parse(given)


@pytest.mark.parametrize(
    "given",
    [
        "c l o s e d",
        "-_-closed-_-",
        "closed-",
        "_closed",
        "clo sed",
        "on  hold",
        "on--hold",
        "on_-hold",
        "o-n-h-o-l-d",
        "no communication!",
        "ｃｌｏｓｅｄ",  # noqa: RUF001 - full-width letters are no documented spelling
        "closed\x00",
    ],
)
def test_separators_anywhere_else_are_refused(given):
    """Only the documented words, joined once: a separator inside a word, doubled or at
    the ends is a ValueError listing the valid values, nothing is guessed."""
    with pytest.raises(ValueError, match="valid values"):
        hc.ChatStatus.parse(given)
    with pytest.raises(ValueError):
        hc.ChatStatus(given)


@pytest.mark.parametrize(
    ("documented", "accepted"),
    [
        ("closed", {"closed"}),
        ("on-hold", {"on hold", "on-hold", "on_hold", "onhold"}),
        ("very poor", {"very poor", "very-poor", "very_poor", "verypoor"}),
        (
            "agentChatOnly",
            {"agent chat only", "agent-chat-only", "agent_chat_only", "agentchatonly"},
        ),
        ("v2", {"v 2", "v-2", "v_2", "v2"}),
        ("?", {"?"}),  # no word in it: the spelling itself
    ],
)
def test_the_accepted_spellings_of_a_documented_value(documented, accepted):
    """Its words (split at separators and capitals), lower case, joined by a space, a
    hyphen, an underscore or nothing. The tables built from them at import are tested
    through ``parse`` above; this tests the rule itself, as run-time code."""
    assert accepted == spellings(documented)


def test_the_table_of_accepted_spellings_maps_each_to_its_member():
    """Built at import for each enum (and its aliases); tested here as run-time code."""
    on_hold, opened = hc.ChatStatus.ON_HOLD, hc.ChatStatus.OPENED

    assert {
        "on hold": on_hold,
        "on-hold": on_hold,
        "on_hold": on_hold,
        "onhold": on_hold,
        "open": opened,
    } == _forgiving({"on-hold": on_hold, "open": opened})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Very_Poor", hc.ChatRating.VERY_POOR),
        (" GREAT ", hc.ChatRating.GREAT),
        (hc.ChatRating.AVERAGE, hc.ChatRating.AVERAGE),
    ],
)
def test_a_rating_is_parsed_from_any_accepted_spelling(given, expected):
    assert expected is hc.ChatRating.parse(given)


def test_a_rating_that_is_none_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError) as info:
        hc.ChatRating.parse("good")
    assert (
        "unknown chat rating 'good'; valid values: perfect, great, average, poor, very poor"
        == str(info.value)
    )
    with pytest.raises(TypeError) as type_info:
        hc.ChatRating.parse(5)  # type: ignore[arg-type]
    assert "chat rating must be a ChatRating or str, not int" == str(type_info.value)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("superviser", hc.AgentRole.SUPERVISER),  # the documented spelling: exact
        ("Supervisor", hc.AgentRole.SUPERVISER),  # any accepted spelling
        ("agent_chat_only", hc.AgentRole.AGENT_CHAT_ONLY),
        ("owner", "owner"),  # a role the SDK does not know yet: kept as its string
        (None, None),
    ],
)
def test_an_open_enum_converter_keeps_what_it_does_not_know(wire, expected):
    """The converter of ``Agent.role`` (and ``Chat.rating``), built here at run time: the
    ones the models use were built at import."""
    convert = _open_enum(hc.AgentRole)

    assert expected == convert(wire)
    assert type(expected) is type(convert(wire))


@pytest.mark.parametrize("empty", ["empty", hc.ChatStatus.EMPTY])
def test_empty_cannot_be_sent(empty):
    """EMPTY is a response value only: sending it is refused, saying why and what is valid."""
    with pytest.raises(ValueError) as info:
        hc.ChatStatus.parse(empty)

    assert (
        "ChatStatus.EMPTY is reported by the server for chats without messages and cannot be "
        f"set; {VALID}"
    ) == str(info.value)


@pytest.mark.parametrize(("chat_id", "name"), [(1, "chat_id"), (2**63 - 1, "chat_id"), (5, "x")])
def test_ids_up_to_64_bits_are_valid(chat_id, name):
    """Ids are positive signed 64-bit integers, the largest one included."""
    assert chat_id == validate_id(chat_id, name=name)


@pytest.mark.parametrize(
    ("chat_id", "error", "message"),
    [
        ("1", TypeError, "chat_id must be an int, not str: '1'"),
        (True, TypeError, "chat_id must be an int, not bool: True"),
        (0, ValueError, "chat_id must be a positive 64-bit integer, got 0"),
        (-3, ValueError, "chat_id must be a positive 64-bit integer, got -3"),
        (2**63, ValueError, f"chat_id must be a positive 64-bit integer, got {2**63}"),
        (2**128 - 1, ValueError, f"chat_id must be a positive 64-bit integer, got {2**128 - 1}"),
        pytest.param(
            2**128,
            ValueError,
            "chat_id must be a positive 64-bit integer, got an integer of 129 bits",
            id="2**128",
        ),
        pytest.param(
            10**5000,
            ValueError,
            "chat_id must be a positive 64-bit integer, got an integer of 16610 bits",
            id="10**5000",
        ),
        pytest.param(
            "x" * 1000,
            TypeError,
            f"chat_id must be an int, not str: {repr('x' * 1000)[:MAX_SCALAR_TEXT]}...",
            id="a long string",
        ),
    ],
)
def test_bad_ids_are_refused_with_the_reason(chat_id, error, message):
    """An id of the wrong type or out of range is refused before anything is sent."""
    with pytest.raises(error) as info:
        validate_id(chat_id)

    assert message == str(info.value)


def test_non_string_status_is_type_error():
    """A status of the wrong type is a TypeError."""
    with pytest.raises(TypeError, match="int"):
        hc.ChatStatus.parse(3)  # type: ignore[arg-type]


def test_status_str_is_its_wire_value():
    """str() of a status is what goes on the wire."""
    assert "on-hold" == str(hc.ChatStatus.ON_HOLD)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (hc.ChatStatus.ON_HOLD, "on-hold"),
        (datetime(2026, 1, 1, tzinfo=UTC), 1767225600),
        (datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))), 1767225600),
        ("bob@example.com", "bob@example.com"),
        (7, 7),
        (1.5, 1.5),
        (True, True),
        (None, None),
    ],
)
def test_filter_values_are_sent_in_wire_form(value, wire):
    """Statuses go as their value and aware datetimes as whole Unix seconds (an int, not a
    float); other values as given."""
    condition = hc.Filter("chats.createdAt", ">=", value)

    assert {"field": "chats.createdAt", "operator": ">=", "value": wire} == condition.to_json()
    assert json.dumps(wire) == json.dumps(condition.to_json()["value"])


@pytest.mark.parametrize("operator", ["=", "!=", ">", "<", ">=", "<=", "~", "!~"])
def test_every_documented_filter_operator_is_accepted(operator):
    """All eight documented search operators are accepted as given."""
    assert operator == hc.Filter("chats.status", operator, "closed").operator


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("chats.status", "==", 1), ValueError, "unknown filter operator '=='; valid: = != > <"),
        (("", "=", 1), ValueError, "filter field must be a non-empty string, got ''"),
        (("  ", "=", 1), ValueError, "filter field must be a non-empty string, got '  '"),
        ((None, "=", 1), ValueError, "filter field must be a non-empty string, got None"),
        (
            ("chats.createdAt", ">", datetime(2026, 1, 1)),
            ValueError,
            "filter datetimes must be timezone-aware",
        ),
        (("chats.status", "=", [1]), TypeError, "filter value must be a str, number, datetime"),
    ],
)
def test_bad_filters_say_what_is_wrong(args, error, message):
    """A bad operator, field or value is refused when the filter is built, saying why."""
    with pytest.raises(error) as info:
        hc.Filter(*args)

    assert str(info.value).startswith(message)


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
        ("253402300799", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("-62135596800", datetime(1, 1, 1, tzinfo=UTC)),
        (253402300799, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (-62135596800, datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamp_edges(wire, expected):
    """Negative, sub-microsecond, exponent forms and the calendar's ends parse exactly."""
    assert expected == hc.Chat.from_json(chat_payload(closedAt=wire)).closed_at


@settings(max_examples=300, deadline=None)
@given(seconds=st.integers(min_value=-62135596800 - 5, max_value=253402300799 + 5))
def test_integer_timestamps_parse_as_their_decimal_text_does(seconds):
    """The int fast path agrees with the exact decimal path, at the calendar's ends too."""
    as_int = parses_or_refuses(hc.Chat.from_json, chat_payload(closedAt=seconds))
    as_text = parses_or_refuses(hc.Chat.from_json, chat_payload(closedAt=str(seconds)))

    if isinstance(as_text, hc.Chat):
        assert isinstance(as_int, hc.Chat)
        assert as_text.closed_at == as_int.closed_at
    else:
        assert str(as_text) == str(as_int).replace(f"{seconds}", f"'{seconds}'")


@settings(max_examples=300, deadline=None)
@given(number=st.integers(min_value=-(2**63) - 5, max_value=2**63 + 5))
def test_integer_ids_parse_as_their_decimal_text_does(number):
    """An id sent as a number and as digits gives the same chat, or the same refusal."""
    as_int = parses_or_refuses(hc.Chat.from_json, chat_payload(lastMessageId=number))
    as_text = parses_or_refuses(hc.Chat.from_json, chat_payload(lastMessageId=str(number)))

    assert type(as_int) is type(as_text)
    if isinstance(as_int, hc.Chat) and isinstance(as_text, hc.Chat):
        assert as_int.last_message_id == as_text.last_message_id == number


def test_timestamps_ignore_the_callers_decimal_context():
    """A caller's decimal precision or traps do not change how timestamps parse."""
    with decimal.localcontext() as context:
        context.prec = 3
        context.traps[decimal.Inexact] = True
        chat = hc.Chat.from_json(chat_payload(closedAt="1597758468.250"))

    assert datetime(2020, 8, 18, 13, 47, 48, 250000, tzinfo=UTC) == chat.closed_at


# --- search filters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), 2**64, -(2**63) - 1, "\ud800"]
)
def test_filter_values_that_cannot_be_encoded_are_refused(value):
    """NaN, infinities, ints past 64 bits and lone surrogates are ValueErrors at once."""
    with pytest.raises(ValueError, match="filter"):
        hc.Filter("chats.lastMessageAt", "<", value)


def test_filter_field_that_cannot_be_encoded_is_refused():
    """A field name with a lone surrogate is a ValueError naming the field and the text."""
    with pytest.raises(ValueError) as caught:
        hc.Filter("chats.\udc80", "=", 1)

    assert str(caught.value) == "filter field is not valid text: 'chats.\\udc80'"


def test_filter_value_that_cannot_be_encoded_is_refused_by_name():
    """A value with a lone surrogate is a ValueError naming the value."""
    with pytest.raises(ValueError) as caught:
        hc.Filter("customer.name", "=", "Ann\ud800")

    assert str(caught.value) == "filter value is not valid text: 'Ann\\ud800'"


def test_a_list_of_tags_is_sent_as_their_names():
    """Tag names and ``Tag`` objects alike go as ``[{"name": ...}]``, colour left out."""
    condition = hc.Filter("customers.tagsData", "=", ["vip", hc.Tag("lead", "#ccc")])

    assert (hc.Tag("vip"), hc.Tag("lead")) == condition.value
    assert [{"name": "vip"}, {"name": "lead"}] == condition.to_json()["value"]


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ([], ValueError, "a list filter value needs at least one tag name"),
        (["vip", "\ud800"], ValueError, "tag name is not valid text: '\\ud800'"),
        (["vip", ""], TypeError, "filter value must be a str, number, datetime, list of tags"),
        (["vip", 3], TypeError, "filter value must be a str, number, datetime, list of tags"),
    ],
)
def test_a_bad_list_of_tags_is_refused_saying_why(value, error, message):
    """An empty list, a name UTF-8 cannot encode, a blank name or a non-name."""
    with pytest.raises(error) as info:
        hc.Filter("customers.tagsData", "=", value)

    assert str(info.value).startswith(message)


@pytest.mark.parametrize("value", [-(2**63), 2**63 - 1])
def test_filter_values_at_the_ends_of_the_64_bit_range_are_sent(value):
    """The smallest and largest signed 64-bit integers are valid filter values."""
    assert value == hc.Filter("chats.id", ">", value).value


def test_filter_value_past_the_64_bit_range_is_refused_by_name():
    """An int one past the range says so, with the number."""
    with pytest.raises(ValueError) as caught:
        hc.Filter("chats.id", ">", -(2**63) - 1)

    assert str(caught.value) == "filter value out of the signed 64-bit range: an integer of 64 bits"


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
        with pytest.raises(hc.ResponseValidationError) as caught:
            hc.Chat.from_json(payload)
        assert str(caught.value) == "chat.lastMessageId: integer out of the signed 64-bit range"


def test_timestamp_text_is_bounded_in_length():
    """A numeric string of 64 characters parses; 65 is refused before any parsing."""
    assert hc.Chat.from_json(chat_payload(closedAt="0" * 54 + "1597758468")).closed_at
    with pytest.raises(hc.ResponseValidationError, match="65 characters"):
        hc.Chat.from_json(chat_payload(closedAt="0" * 55 + "1597758468"))


# --- payloads that are not plain dicts ----------------------------------------------------


def frozen_mappings(value: Any) -> Any:
    """``value`` with every dict in it (nested ones too) turned into a read-only mapping."""
    if isinstance(value, dict):
        return types.MappingProxyType({k: frozen_mappings(v) for k, v in value.items()})
    if isinstance(value, list):
        return [frozen_mappings(item) for item in value]
    return value


def test_any_mapping_is_taken_as_an_object():
    """A payload of read-only mappings (not dicts) gives the same chat as the dicts do."""
    payload = chat_payload(
        agents=[{"id": 3, "role": "admin"}],
        customer={"id": 9, "name": "Ivan"},
        assignee={"id": 3},
        department={"id": 2, "name": "Billing"},
    )

    assert hc.Chat.from_json(frozen_mappings(payload)) == hc.Chat.from_json(payload)
    assert hc.Chat.from_json(frozen_mappings({"data": payload})) == hc.Chat.from_json(payload)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (hc.Agent.from_json, "expected an agent object, got int"),
        (hc.Customer.from_json, "expected a customer object, got int"),
        (hc.Department.from_json, "expected a department object, got int"),
        (hc.Chat.from_json, "expected a chat object, got int"),
        (hc.Message.from_json, "expected a message object, got int"),
    ],
)
def test_a_model_of_a_non_object_is_refused_by_name(build, message):
    """Each model says what it expected and what it got."""
    with pytest.raises(hc.ResponseValidationError) as caught:
        build(7)

    assert str(caught.value) == message


@pytest.mark.parametrize("empty", [None, [], {}])
def test_an_empty_nested_object_is_none(empty):
    """A customer, assignee or department sent as null, [] or {} is None."""
    chat = hc.Chat.from_json(chat_payload(customer=empty, assignee=empty, department=empty))

    assert (chat.customer, chat.assignee, chat.department) == (None, None, None)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (253402300800, "timestamp out of range: 253402300800"),
        (-62135596801, "timestamp out of range: -62135596801"),
        ("253402300800", "timestamp out of range: '253402300800'"),
        ("-62135596801", "timestamp out of range: '-62135596801'"),
        ("253402300799.9999999", "timestamp out of range: '253402300799.9999999'"),
        (2**63 - 1, "timestamp out of range: 9223372036854775807"),
        (-(2**63), "timestamp out of range: -9223372036854775808"),
        (2**63, "timestamp out of range: an integer of 64 bits"),
    ],
)
def test_timestamps_past_the_calendar_are_refused_with_the_value(wire, message):
    """One past either end of the calendar, as a number or as text, is refused, value shown."""
    with pytest.raises(hc.ResponseValidationError) as caught:
        hc.Chat.from_json(chat_payload(closedAt=wire))

    assert str(caught.value) == f"chat.closedAt: {message}"


@pytest.mark.parametrize("length", [62, 63])
def test_values_in_messages_are_cut_past_64_characters(length):
    """A value's repr of up to 64 characters is shown whole; a longer one is cut, with "..."."""
    value = "x" * length  # its repr has two quotes more
    shown = repr(value) if length == 62 else repr(value)[:64] + "..."
    with pytest.raises(hc.ResponseValidationError) as caught:
        hc.Chat.from_json(chat_payload(readByAgent=value))

    assert str(caught.value) == f"chat.readByAgent: expected a boolean, got {shown}"


@pytest.mark.parametrize(
    "payload",
    [{"closedAt": "x"}, {"data": {"lastMessageId": []}}, {"agents": [None]}, {"id": None}],
)
def test_a_chat_without_an_id_is_missing_whatever_else_is_wrong(payload):
    """The id is checked first: a chat without one is refused as missing."""
    with pytest.raises(hc.ResponseValidationError) as caught:
        hc.Chat.from_json(payload)

    assert str(caught.value) == "chat.id: missing"


def deeply_nested_list(depth: int) -> list[Any]:
    """``[[[...]]]``, ``depth`` levels deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [[10**5000], deeply_nested_list(100_000)],
    ids=["huge-int-inside", "deeply-nested"],
)
def test_values_too_large_to_show_are_named_by_type(value):
    """A value whose repr would fail (a huge int inside, deep nesting) is named by its type."""
    with pytest.raises(hc.ResponseValidationError) as caught:
        hc.Chat.from_json(chat_payload(readByAgent=value))

    assert str(caught.value) == "chat.readByAgent: expected a boolean, got a list too large to show"
