"""Chat and its parts, built from every payload variant the docs show."""

from __future__ import annotations

from datetime import datetime, timezone

import attrs
import pytest

import helpcrunch_async as hc
from tests.conftest import chat_payload

UTC = timezone.utc


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
