"""client.agents.list and client.departments.list: paging, roles, every documented shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import helpcrunch_async as hc

pytestmark = pytest.mark.anyio


def agent(agent_id: Any, role: Any = "agent") -> dict[str, Any]:
    return {"id": agent_id, "name": f"Agent {agent_id}", "email": f"a{agent_id}@x.io", "role": role}


async def test_agents_are_listed_page_by_page(client, api):
    """Pages are asked with offset and limit until a short one; meta.total is not trusted."""
    route = api.get("/agents").mock(
        side_effect=[
            httpx.Response(200, json={"data": [agent(1), agent(2)], "meta": {"total": 1}}),
            httpx.Response(200, json={"data": [agent(3)], "meta": {"total": 1}}),
        ]
    )

    ids = [a.id async for a in client.agents.list(page_size=2)]

    assert [1, 2, 3] == ids
    assert [("0", "2"), ("2", "2")] == [
        (c.request.url.params["offset"], c.request.url.params["limit"]) for c in route.calls
    ]


@pytest.mark.parametrize(
    ("wire", "role"),
    [
        ("admin", hc.AgentRole.ADMIN),
        ("agent", hc.AgentRole.AGENT),
        ("agentChatOnly", hc.AgentRole.AGENT_CHAT_ONLY),
        ("superviser", hc.AgentRole.SUPERVISER),
        ("supervisor", hc.AgentRole.SUPERVISER),
        ("owner", "owner"),
        (None, None),
    ],
)
async def test_agent_roles_as_documented(client, api, wire, role):
    """Documented roles (the API's "superviser" included) become AgentRole; others stay strings."""
    api.get("/agents").respond(200, json={"data": [agent(1, wire)], "meta": {"total": 1}})

    [found] = [a async for a in client.agents.list()]

    assert role == found.role
    assert type(role) is type(found.role)


def test_agent_role_reads_as_its_wire_value():
    """An AgentRole compares and prints as the API's spelling."""
    assert "superviser" == hc.AgentRole.SUPERVISER.value
    wire: str = "superviser"
    assert hc.AgentRole.SUPERVISER == wire
    assert "agentChatOnly" == str(hc.AgentRole.AGENT_CHAT_ONLY)


@pytest.mark.parametrize(
    "body", [{"agents": []}, [agent(1)], {"data": [1, 2]}, {"data": [agent("x")]}]
)
async def test_agents_page_of_the_wrong_shape_is_a_validation_error(client, api, body):
    """Not the documented page, or items that are not agents: ResponseValidationError."""
    api.get("/agents").respond(200, json=body)

    with pytest.raises(hc.ResponseValidationError):
        [a async for a in client.agents.list()]


@pytest.mark.parametrize("size", [0, 101, "10", True])
async def test_agents_page_size_is_validated_at_once(client, size):
    """A bad page size fails when list() is called, before any request."""
    with pytest.raises((TypeError, ValueError)):
        client.agents.list(page_size=size)


DEPARTMENTS = [
    {"id": 1, "name": "Support", "agents": [agent(1, "admin"), agent(2)]},
    {"id": 2, "name": "Billing", "agents": []},
]


@pytest.mark.parametrize("body", [DEPARTMENTS, {"data": DEPARTMENTS}])
async def test_departments_with_their_agents_in_either_shape(client, api, body):
    """The bare list and the data envelope both give Departments with their agents."""
    api.get("/departments").respond(200, json=body)

    departments = [d async for d in client.departments.list()]

    assert [(1, "Support"), (2, "Billing")] == [(d.id, d.name) for d in departments]
    assert [(1, hc.AgentRole.ADMIN), (2, hc.AgentRole.AGENT)] == [
        (a.id, a.role) for a in departments[0].agents
    ]
    assert () == departments[1].agents


@pytest.mark.parametrize(
    ("agents", "ids"),
    [([4, "5"], (4, 5)), ({"id": 6}, (6,)), (None, ()), ([], ())],
)
async def test_department_agents_as_ids_or_one_object(client, api, agents, ids):
    """Agents nested as bare ids, or as one object, are accepted."""
    api.get("/departments").respond(200, json=[{"id": 1, "name": "S", "agents": agents}])

    [department] = [d async for d in client.departments.list()]

    assert ids == tuple(a.id for a in department.agents)


@pytest.mark.parametrize(
    "body", [{"departments": []}, "Support", [1], [{"id": 1, "agents": "all"}]]
)
async def test_departments_of_the_wrong_shape_are_a_validation_error(client, api, body):
    """Anything but a list of department objects is ResponseValidationError."""
    api.get("/departments").respond(200, json=body)

    with pytest.raises(hc.ResponseValidationError):
        [d async for d in client.departments.list()]


async def test_unknown_department_is_not_found(client, api):
    """The documented 404 entity_not_found maps to NotFoundError."""
    api.get("/departments").respond(
        404, json={"errors": [{"code": "entity_not_found", "message": "Department not found"}]}
    )

    with pytest.raises(hc.NotFoundError, match="Department not found"):
        [d async for d in client.departments.list()]
