"""A user's project tested with the kit, run by pytester: on pytest-asyncio and on anyio.

The project has the package (with the emulator), pytest and pytest-asyncio, and no
conftest: plugin autoloading is off in these runs, and exactly the plugins such a project
gets are loaded (the kit, pytest-asyncio, anyio's), so that nothing of this suite's own
environment (respx, hypothesis...) can help.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.emulator

#: The plugins of a project with the package, pytest and pytest-asyncio installed.
PLUGINS = ("helpcrunch_async.testing._plugin", "pytest_asyncio.plugin", "anyio.pytest_plugin")

#: The user's code: a bot that greets every new chat, through its webhook.
GREETER = """
from starlette.applications import Starlette
from starlette.routing import Route

import helpcrunch_async as hc
from helpcrunch_async.webhooks import WebhookEndpoint, WebhookEvent

GREETING = "Hi! An agent will be with you in a minute."


def make_app(client: hc.HelpCrunch, signing_key: str) -> Starlette:
    async def greet(event: WebhookEvent) -> None:
        if event.type == "chat.new":
            await client.messages.create(event.data.chat_id, GREETING, agent_id=1)

    endpoint = WebhookEndpoint(greet, signing_key=signing_key)
    return Starlette(routes=[Route("/helpcrunch/webhooks", endpoint, methods=["POST"])])
"""

#: The user's tests, after a header that picks the runner.
TESTS = """
import pytest

import helpcrunch_async as hc
from greeter import GREETING, make_app

NEW = 5216200  # the id the emulator gives the first chat created (500 are seeded)


async def test_a_call(helpcrunch_client):
    chat = await helpcrunch_client.chats.update_status(5215700, "closed")
    assert hc.ChatStatus.CLOSED is chat.status


async def test_a_chat_created_here(helpcrunch_client, helpcrunch_emulator):
    chat = await helpcrunch_client.chats.create(customer=1, application=1)
    assert NEW == chat.id
    assert [("POST", "/chats", {"customer": 1, "application": 1})] == [
        (sent.method, sent.path, sent.json) for sent in helpcrunch_emulator.requests
    ]


async def test_is_gone_in_the_next_test(helpcrunch_client, helpcrunch_emulator):
    with pytest.raises(hc.NotFoundError):
        await helpcrunch_client.chats.get(NEW)
    assert [("GET", f"/chats/{NEW}")] == [
        (sent.method, sent.path) for sent in helpcrunch_emulator.requests
    ]


async def test_a_new_chat_is_greeted(helpcrunch_client, helpcrunch_emulator):
    app = make_app(helpcrunch_client, helpcrunch_emulator.webhooks.signing_key)
    chat = await helpcrunch_client.chats.create(customer=1, application=1)

    [answer] = await helpcrunch_emulator.webhooks.deliver("/helpcrunch/webhooks", app=app)

    assert 200 == answer.status_code
    greeting = helpcrunch_emulator.requests[-1]
    assert ("POST", "/messages") == (greeting.method, greeting.path)
    assert {"chat": chat.id, "text": GREETING, "agent": 1, "type": "message"} == greeting.json


async def test_a_wrong_expectation(helpcrunch_client):
    chat = await helpcrunch_client.chats.get(5215700)
    assert 5215701 == chat.id
"""

#: A module header that runs the tests on anyio's plugin, on one backend.
ANYIO = """
import pytest

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return {!r}
"""

#: What picks the runner, by name: the test module's header and pytest-asyncio's mode.
HEADERS = {
    "pytest-asyncio strict": ("import pytest\n\npytestmark = pytest.mark.asyncio\n", "strict"),
    "pytest-asyncio auto": ("", "auto"),
    "anyio asyncio": (ANYIO.format("asyncio"), "strict"),
    "anyio trio": (ANYIO.format("trio"), "strict"),
}


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The user's project folder: their code, and pytest set up as a careful project does."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(greeter=GREETER)
    pytester.syspathinsert()
    return pytester


def run(project: pytest.Pytester, asyncio_mode: str, *args: str) -> pytest.RunResult:
    project.makeini(
        "[pytest]\n"
        f"asyncio_mode = {asyncio_mode}\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    plugins = [arg for plugin in PLUGINS for arg in ("-p", plugin)]
    return project.runpytest("-p", "no:cacheprovider", *plugins, *args)


@pytest.mark.parametrize("mode", sorted(HEADERS))
def test_a_project_tests_its_code_with_the_fixtures(project, mode):
    """A call, isolation, the requests, a webhook to a Starlette app, and a failing assertion."""
    header, asyncio_mode = HEADERS[mode]
    project.makepyfile(test_greeter=header + TESTS)

    result = run(project, asyncio_mode, "-v")

    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_a_wrong_expectation FAILED*",
            "*AssertionError: assert 5215701 == 5215700",
        ]
    )


def test_markers_set_the_emulator_test_by_test(project):
    """A module's marker is overridden by a test's; unmarked modules keep the defaults."""
    project.makepyfile(
        test_marked="""
        import pytest
        import helpcrunch_async as hc
        from helpcrunch_async.emulator import Faults

        pytestmark = [pytest.mark.anyio, pytest.mark.helpcrunch_emulator(chats=3)]


        async def test_module_setting(helpcrunch_emulator):
            assert 3 == len(helpcrunch_emulator.state.chats)


        @pytest.mark.helpcrunch_emulator(rate_limit="4/60", payload_style="legacy")
        async def test_test_setting_over_the_module(helpcrunch_client, helpcrunch_emulator):
            assert 3 == len(helpcrunch_emulator.state.chats)
            assert "legacy" == helpcrunch_emulator.config.payload_style
            assert 4 == helpcrunch_emulator.config.rate_limit.requests
            assert hc.RateLimit(4, 60.0) == helpcrunch_client.limiter.limit


        @pytest.mark.helpcrunch_emulator(faults=Faults(server_errors=1.0))
        async def test_faults(helpcrunch_emulator):
            client = helpcrunch_emulator.client(max_retries=1)
            with pytest.raises(hc.ServerError):
                await client.chats.get(5215700)
            assert [500, 500] == [
                sent.status // 100 * 100 for sent in helpcrunch_emulator.requests
            ]


        @pytest.mark.helpcrunch_emulator(colour="blue")
        def test_unknown_setting(helpcrunch_emulator):
            pass
        """,
        test_plain="""
        def test_defaults(helpcrunch_emulator):
            assert 500 == len(helpcrunch_emulator.state.chats)
            assert helpcrunch_emulator.config.rate_limit is None
        """,
    )

    result = run(project, "strict")

    result.assert_outcomes(passed=7, errors=1)  # the anyio tests on asyncio and trio
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.helpcrunch_emulator: helpcrunch_emulator takes chats, *; not colour"]
    )


def test_the_plugin_is_found_by_pytest():
    """pytest loads the kit through the package's pytest11 entry point."""
    [plugin] = [ep for ep in entry_points(group="pytest11") if ep.name == "helpcrunch"]

    assert "helpcrunch_async.testing._plugin" == plugin.value


def test_without_the_extra_a_fixture_fails_with_one_clear_message(pytester):
    """No emulator installed: tests without the fixtures run, the fixtures name the extra."""
    # The missing extra, made: a sitecustomize-free way is a path entry that shadows both
    # packages with modules that fail to import, as uninstalled ones do.
    pytester.makepyfile(
        starlette="raise ModuleNotFoundError(\"No module named 'starlette'\", name='starlette')",
        uvicorn="raise ModuleNotFoundError(\"No module named 'uvicorn'\", name='uvicorn')",
    )
    pytester.makepyfile(
        test_project="""
        import sys


        def test_the_plugin_alone_costs_no_emulator():
            assert "helpcrunch_async.emulator" not in sys.modules


        def test_a_fixture(helpcrunch_client):
            pass
        """
    )

    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"
    )

    result.assert_outcomes(passed=1, errors=1)
    assert (
        "the helpcrunch_emulator and helpcrunch_client fixtures need the emulator: pip install "
        '"helpcrunch-async[testing]" (starlette is not installed)'
    ) in result.stdout.lines
    result.stdout.no_fnmatch_line("*Traceback*")
