"""The priority gate: two FIFO classes, direct hand-off, deadlines, cancellation."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async import LimiterTimeoutError
from helpcrunch_async._limit._gate import Lanes, Priority, PriorityGate

VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)


async def settle() -> None:
    """Let every runnable task run until it blocks."""
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


@pytest.mark.anyio
async def test_interactive_before_every_queued_background_fifo_within_a_class(anyio_backend):
    """Queued: b0 b1 i0 b2 i1; served: i0 i1 b0 b1 b2."""
    gate = PriorityGate(1)
    order: list[str] = []
    await gate.acquire()  # hold it while the line forms

    async def one(name: str) -> None:
        async with gate.enter("interactive" if name[0] == "i" else "background"):
            order.append(name)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for name in ["b0", "b1", "i0", "b2", "i1"]:
            tg.start_soon(one, name)
            await settle()
        assert 5 == gate.waiting()
        gate.release()

    assert ["i0", "i1", "b0", "b1", "b2"] == order
    assert 1 == gate.free


@pytest.mark.anyio
async def test_background_gets_every_permit_when_no_interactive_waits(anyio_backend):
    """Background callers alone use all permits at once: they are not starved."""
    gate = PriorityGate(3)
    inside = 0
    most = 0

    async def one() -> None:
        nonlocal inside, most
        async with gate.enter("background"):
            inside += 1
            most = max(most, inside)
            await settle()
            inside -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(9):
            tg.start_soon(one)

    assert 3 == most
    assert 3 == gate.free


@pytest.mark.anyio
async def test_newcomer_does_not_barge_past_the_line(anyio_backend):
    """A released permit goes to the first waiter, not to a caller arriving at that moment."""
    gate = PriorityGate(1)
    order: list[str] = []
    await gate.acquire()

    async def one(name: str, priority: str) -> None:
        async with gate.enter(priority):  # type: ignore[arg-type]
            order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "queued", "background")
        await settle()
        gate.release()
        tg.start_soon(one, "newcomer", "background")

    assert ["queued", "newcomer"] == order


@pytest.mark.anyio
@pytest.mark.parametrize("priority", ["interactive", "background"])
async def test_cancelled_in_the_line_the_permit_goes_to_the_next(anyio_backend, priority):
    """Cancel one queued waiter of either class: the next waiter gets the permit on release."""
    gate = PriorityGate(1)
    order: list[str] = []
    await gate.acquire()

    async def one(name: str, prio: str) -> None:
        async with gate.enter(prio):  # type: ignore[arg-type]
            order.append(name)

    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as doomed:
            doomed.start_soon(one, "cancelled", priority)
            await settle()
            tg.start_soon(one, "next", "background")
            await settle()
            doomed.cancel_scope.cancel()
        assert 1 == gate.waiting()
        gate.release()

    assert ["next"] == order
    assert 1 == gate.free


@pytest.mark.anyio
async def test_cancelled_just_after_the_hand_off_passes_the_permit_on(anyio_backend):
    """A waiter handed the permit but cancelled before it ran gives it to the next waiter."""
    gate = PriorityGate(1)
    order: list[str] = []
    await gate.acquire()

    async def one(name: str) -> None:
        async with gate.enter("background"):
            await anyio.lowlevel.checkpoint()
            order.append(name)

    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as doomed:
            doomed.start_soon(one, "handed")
            await settle()
            tg.start_soon(one, "next")
            await settle()
            gate.release()  # hands the permit to "handed"...
            doomed.cancel_scope.cancel()  # ...which is cancelled before it runs

    assert ["next"] == order
    assert 1 == gate.free
    assert 0 == gate.waiting()


@pytest.mark.anyio
@VIRTUAL
async def test_a_deadline_raises_and_gives_the_place_to_the_next(anyio_backend):
    """Past its deadline the waiter raises LimiterTimeoutError; those behind it move up."""
    gate = PriorityGate(1)
    await gate.acquire()
    order: list[str] = []
    errors: list[hc.LimiterTimeoutError] = []

    async def impatient() -> None:
        try:
            async with gate.enter("interactive", anyio.current_time() + 1.0):
                order.append("impatient")  # pragma: no cover - never reached
        except hc.LimiterTimeoutError as exc:
            errors.append(exc)

    async def patient() -> None:
        async with gate.enter("background"):
            order.append("patient")

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(impatient)
        tg.start_soon(patient)
        await anyio.sleep(5.0)
        gate.release()

    assert ["no free slot within max_wait"] == [str(error) for error in errors]
    assert errors[0].retry_after is None
    assert ["patient"] == order
    assert pytest.approx(5.0) == anyio.current_time() - start


@pytest.mark.anyio
async def test_a_deadline_of_now_refuses_at_once_and_free_permit_is_taken(anyio_backend):
    """A deadline already reached (max_wait=0): a free permit is taken, a busy gate refuses."""
    gate = PriorityGate(1)
    async with gate.enter("interactive", anyio.current_time()):
        with pytest.raises(hc.LimiterTimeoutError, match=r"^no free slot, and no time left to"):
            await gate.acquire("background", anyio.current_time())
    assert 1 == gate.free


@pytest.mark.anyio
@VIRTUAL
async def test_a_deadline_of_exactly_now_is_already_past(anyio_backend):
    """On a clock that stands still, a deadline equal to the time now refuses at once: the
    caller does not queue for a wait of zero."""
    gate = PriorityGate(1)
    await gate.acquire()

    with pytest.raises(hc.LimiterTimeoutError) as info:
        await gate.acquire("interactive", anyio.current_time())

    assert "no free slot, and no time left to wait for one" == str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"permits": 0}, ValueError, "permits must be >= 1, got 0"),
        ({"permits": 1.5}, TypeError, "permits must be an int, not float"),
        ({"permits": True}, TypeError, "permits must be an int, not bool"),
        ({"permits": 2, "reserve": -1}, ValueError, "reserve must be >= 0, got -1"),
        ({"permits": 2, "reserve": 0.5}, TypeError, "reserve must be an int, not float"),
    ],
)
def test_bad_permits_or_reserve(kwargs, exc, message):
    """The gate needs a positive int of permits and a reserve of at least 0; the error names
    the argument."""
    with pytest.raises(exc) as info:
        PriorityGate(**kwargs)

    assert message == str(info.value)


def test_repr_shows_the_line():
    """The repr says permits, free ones, and who waits in each class."""
    assert "PriorityGate(permits=2, free=2, waiting=0+0)" == repr(PriorityGate(2))


@pytest.mark.anyio
async def test_reprs_count_each_class_apart(anyio_backend):
    """One interactive and two background callers queued: the reprs tell the classes apart."""
    gate = PriorityGate(1)
    lanes = Lanes()
    await gate.acquire()

    async def one(priority: Priority) -> None:
        async with gate.enter(priority), lanes.enter(priority, None):
            await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        order: list[Priority] = ["interactive", "background", "background"]
        for priority in order:
            tg.start_soon(one, priority)
        await settle()
        assert "PriorityGate(permits=1, free=0, waiting=1+2)" == repr(gate)
        gate.release()
        await settle()
        # the interactive caller holds the gate's permit and heads its lane
        assert "Lanes(interactive=1, background=0)" == repr(lanes)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_background_callers_leave_the_reserve_to_interactive_ones():
    """With a reserve of one, background callers fill every other permit and queue; an
    interactive caller still enters at once."""
    gate = PriorityGate(3, reserve=1)
    await gate.acquire("background")
    await gate.acquire("background")

    with pytest.raises(LimiterTimeoutError):
        await gate.acquire("background", anyio.current_time())
    async with anyio.create_task_group() as tg:
        tg.start_soon(gate.acquire, "background")
        await settle()
        # a newcomer finds the queued background caller ahead of it only in its own class
        assert (0, 1) == (gate.ahead_of("interactive"), gate.ahead_of("background"))
        await gate.acquire("interactive", anyio.current_time())
        assert (0, 1) == (gate.free, gate.waiting("background"))
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_release_goes_to_background_only_past_the_reserve():
    """A queued background caller gets a released permit only when the reserve stays free."""
    gate = PriorityGate(2, reserve=1)
    await gate.acquire("background")
    await gate.acquire("interactive")
    entered = []

    async def background() -> None:
        await gate.acquire("background")
        entered.append("background")

    async with anyio.create_task_group() as tg:
        tg.start_soon(background)
        await anyio.wait_all_tasks_blocked()
        gate.release()  # the interactive caller leaves: that permit is the reserve
        await anyio.wait_all_tasks_blocked()
        assert [] == entered
        gate.release()  # the background holder leaves: its permit goes to the waiter
    assert ["background"] == entered


@pytest.mark.anyio
async def test_a_release_goes_to_a_queued_interactive_caller_even_into_the_reserve():
    """The reserve holds permits back from background work only: a queued interactive
    caller gets a released permit at once, though it leaves fewer than the reserve free."""
    gate = PriorityGate(2, reserve=1)
    await gate.acquire("interactive")
    await gate.acquire("interactive")
    entered = []

    async def interactive() -> None:
        await gate.acquire("interactive")
        entered.append("interactive")

    async with anyio.create_task_group() as tg:
        tg.start_soon(interactive)
        await anyio.wait_all_tasks_blocked()
        gate.release()
        await anyio.wait_all_tasks_blocked()
        assert ["interactive"] == entered
        assert 0 == gate.free


def test_the_reserve_never_takes_every_permit():
    """A single permit is never reserved: background work could not run at all."""
    assert 0 == PriorityGate(1, reserve=1).reserve
    assert 1 == PriorityGate(2, reserve=5).reserve
