"""rounds.Rounds: calls made while a round is out share the next one."""

from __future__ import annotations

import asyncio
import threading

import pytest

from stemedb.rounds import Rounds


class Recorder:
    """``run_many`` that records each round and can hold it until released."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.rounds: list[list[int]] = []
        self.threads: set[str] = set()
        self.release = threading.Event()
        self.release.set()
        self.fail_on = fail_on

    def __call__(self, items: list[int]) -> list[int]:
        self.rounds.append(list(items))
        self.threads.add(threading.current_thread().name)
        self.release.wait(5)
        if self.fail_on in items:
            raise ValueError(f"item {self.fail_on}")
        return [i * 10 for i in items]


def test_a_lone_call_runs_at_once_in_its_own_round_off_the_loop() -> None:
    rec = Recorder()
    rounds = Rounds(rec)

    async def main() -> list[int]:
        return [await rounds(1), await rounds(2)]

    assert asyncio.run(main()) == [10, 20]
    assert rec.rounds == [[1], [2]]
    assert threading.current_thread().name not in rec.threads


def test_calls_made_while_a_round_is_out_go_together_in_the_next() -> None:
    rec = Recorder()
    rounds = Rounds(rec, most=4)

    async def main() -> list[int]:
        rec.release.clear()
        first = asyncio.ensure_future(rounds(0))
        while not rec.rounds:  # the first round is out (and held)
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(rounds(i)) for i in range(1, 7)]
        await asyncio.sleep(0.01)
        rec.release.set()
        return [await first] + [await f for f in rest]

    assert asyncio.run(main()) == [i * 10 for i in range(7)]
    assert rec.rounds == [[0], [1, 2, 3, 4], [5, 6]]  # at most ``most`` a round


class Down(Exception):
    """An error that is not one item's doing."""


async def _held_round(rec: Recorder, rounds: Rounds[int, int], second: tuple[int, ...]
                      ) -> list[object]:
    """Item 0 alone in a held round, ``second`` together in the next; then item 3."""
    rec.release.clear()
    first = asyncio.ensure_future(rounds(0))
    while not rec.rounds:
        await asyncio.sleep(0.001)
    later = [asyncio.ensure_future(rounds(i)) for i in second]
    await asyncio.sleep(0.01)
    rec.release.set()
    got = await asyncio.gather(first, *later, return_exceptions=True)
    return [*got, await rounds(3)]


def test_an_item_the_backend_refuses_fails_alone() -> None:
    rec = Recorder(fail_on=2)
    got = asyncio.run(_held_round(rec, Rounds(rec), (1, 2, 4)))
    assert got[:2] == [0, 10] and got[3:] == [40, 30]
    assert isinstance(got[2], ValueError)
    assert rec.rounds == [[0], [1, 2, 4], [1], [2], [4], [3]]  # the failed round, one by one


def test_a_shared_error_is_every_caller_of_its_round_and_the_next_round_still_runs() -> None:
    class DownRecorder(Recorder):
        def __call__(self, items: list[int]) -> list[int]:
            out = super().__call__(items)
            if 1 in items:
                raise Down("the backend is away")
            return out

    rec = DownRecorder()
    got = asyncio.run(_held_round(rec, Rounds(rec, shared=lambda e: isinstance(e, Down)),
                                  (1, 2)))
    assert got[0] == 0
    assert [type(g) for g in got[1:3]] == [Down, Down]
    assert got[3] == 30
    assert rec.rounds == [[0], [1, 2], [3]]  # not retried one by one


def test_a_cancelled_round_leaves_nobody_waiting() -> None:
    rec = Recorder()
    rounds = Rounds(rec)

    async def main() -> None:
        rec.release.clear()
        calls = [asyncio.ensure_future(rounds(i)) for i in range(3)]
        while not rec.rounds:
            await asyncio.sleep(0.001)
        task = rounds._task
        assert task is not None
        task.cancel()
        rec.release.set()
        for c in calls:
            with pytest.raises(asyncio.CancelledError):
                await c
        assert rounds._task is None
        assert await rounds(5) == 50  # a later call starts afresh

    asyncio.run(main())


def test_on_the_loop_calls_of_one_tick_share_a_round_and_an_item_fails_alone() -> None:
    rec = Recorder(fail_on=2)
    rounds = Rounds(rec, in_thread=lambda: False)

    async def main() -> list[int | str]:
        calls = [asyncio.ensure_future(rounds(i)) for i in range(4)]
        out: list[int | str] = []
        for call in calls:
            try:
                out.append(await call)
            except ValueError as e:
                out.append(str(e))
        return out

    assert asyncio.run(main()) == [0, 10, "item 2", 30]
    assert rec.rounds == [[0, 1, 2, 3], [0], [1], [2], [3]]  # then each alone
    assert rec.threads == {threading.current_thread().name}
