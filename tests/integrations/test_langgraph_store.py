"""``StemeDBStore`` in real LangGraph graphs (nodes reach it through ``get_store()``),
sync and async, against a real server: values are superseded, never overwritten."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, TypedDict

import pytest

from stemedb import AgentKey, Client
from tests.helpers import ServerProcess
from tests.integrations.extras import need

need("langgraph", "langgraph")
from langgraph.config import get_store  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.store.base import InvalidNamespaceError  # noqa: E402

from stemedb.integrations.langgraph import (  # noqa: E402
    StemeDBItem,
    StemeDBSearchItem,
    StemeDBStore,
    WriteQuarantined,
)

pytestmark = pytest.mark.integration


class Turn(TypedDict, total=False):
    user: str
    food: str
    recalled: dict[str, Any]


def compile_graph(store: StemeDBStore, remember: Any, recall: Any) -> Any:
    """remember -> recall: the first node writes the preference, the second reads it."""
    graph = StateGraph(Turn)
    graph.add_node("remember", remember)
    graph.add_node("recall", recall)
    graph.add_edge(START, "remember")
    graph.add_edge("remember", "recall")
    graph.add_edge("recall", END)
    return graph.compile(store=store)


def memory_graph(store: StemeDBStore) -> Any:
    def remember(state: Turn) -> Turn:
        get_store().put(("users", state["user"]), "preferences", {"food": state["food"]})
        return {}

    def recall(state: Turn) -> Turn:
        item = get_store().get(("users", state["user"]), "preferences")
        assert item is not None
        return {"recalled": item.value}

    return compile_graph(store, remember, recall)


def async_memory_graph(store: StemeDBStore) -> Any:
    async def remember(state: Turn) -> Turn:
        await get_store().aput(("users", state["user"]), "preferences", {"food": state["food"]})
        return {}

    async def recall(state: Turn) -> Turn:
        item = await get_store().aget(("users", state["user"]), "preferences")
        assert item is not None
        return {"recalled": item.value}

    return compile_graph(store, remember, recall)


def check_history_kept(steme: ServerProcess, key: AgentKey, item: StemeDBItem,
                       history: list[dict[str, Any]]) -> None:  # fmt: skip
    """Two puts: the first assertion is superseded by the second and still readable."""
    assert [h["status"] for h in history] == ["active", "superseded"]
    assert [h["object"] for h in history] == [{"food": "sushi"}, {"food": "pizza"}]
    current, first = history
    assert current["supersedes"] == first["id"] and first["ended_by"] == current["id"]
    assert item.stemedb.assertion_id == current["id"] and item.stemedb.agent_id == key.agent_id
    assert item.stemedb.supersedes == first["id"] and item.stemedb.confidence == 0.8
    assert item.created_at == datetime.fromisoformat(first["recorded_at"])
    assert item.updated_at == datetime.fromisoformat(current["recorded_at"])
    assert item.created_at < item.updated_at
    belief = item.stemedb.belief
    assert belief is not None and belief.supporters == 1 and belief.rivals == 0
    assert not belief.contested and 0 < belief.score <= 1
    with Client(steme.url) as db:
        old = db.get(first["id"])
    assert old["status"] == "superseded" and old["object"] == {"food": "pizza"}


def test_sync_graph_supersedes_and_keeps_history(steme: ServerProcess) -> None:
    key = AgentKey.generate()
    with StemeDBStore(steme.url, key) as store:
        app = memory_graph(store)
        assert app.invoke({"user": "alice", "food": "pizza"})["recalled"] == {"food": "pizza"}
        assert app.invoke({"user": "alice", "food": "sushi"})["recalled"] == {"food": "sushi"}
        # The same value again is already the active one: nothing is written.
        assert app.invoke({"user": "alice", "food": "sushi"})["recalled"] == {"food": "sushi"}
        ns = ("users", "alice")

        item = store.get(ns, "preferences")
        assert isinstance(item, StemeDBItem)
        check_history_kept(steme, key, item, store.history(ns, "preferences"))
        assert item.dict()["stemedb"]["assertion_id"] == item.stemedb.assertion_id


def test_async_graph_supersedes_and_keeps_history(steme: ServerProcess) -> None:
    key = AgentKey.generate()
    store = StemeDBStore(steme.url, key)

    async def run() -> None:
        async with store:
            app = async_memory_graph(store)
            for food in ("pizza", "sushi"):
                answer = await app.ainvoke({"user": "bob", "food": food})
                assert answer["recalled"] == {"food": food}
            ns = ("users", "bob")
            item = await store.aget(ns, "preferences")
            assert isinstance(item, StemeDBItem)
            check_history_kept(steme, key, item, await store.ahistory(ns, "preferences"))
            found = await store.asearch(("users",), query="sushi")
            assert [i.key for i in found] == ["preferences"]
            await store.adelete(ns, "preferences")
            assert await store.aget(ns, "preferences") is None

    asyncio.run(asyncio.wait_for(run(), 120))
    store.close()


def test_search_filters_namespaces_and_delete(steme: ServerProcess) -> None:
    with StemeDBStore(steme.url, AgentKey.generate(), beliefs=False) as store:
        store.put(("notes", "rivers"), "danube", {"flows_into": "black sea", "length_km": 2850})
        store.put(("notes", "rivers"), "rhine", {"flows_into": "north sea", "length_km": 1230})
        store.put(("notes", "lakes"), "baikal", {"country": "russia", "depth_m": 1642})
        store.put(("archive",), "volga", {"flows_into": "caspian sea", "length_km": 3530})

        everything = store.search(())
        assert [i.key for i in everything] == ["volga", "baikal", "rhine", "danube"]
        assert all(isinstance(i, StemeDBSearchItem) for i in everything)
        assert all(i.stemedb.belief is None for i in everything)
        rivers = store.search(("notes", "rivers"))
        assert {i.key for i in rivers} == {"danube", "rhine"}
        assert rivers[0].namespace == ("notes", "rivers")
        assert [i.key for i in store.search(("notes",), limit=1, offset=1)] == ["rhine"]

        long = store.search((), filter={"length_km": {"$gte": 2000}})
        assert {i.key for i in long} == {"danube", "volga"}
        assert [i.key for i in store.search((), filter={"flows_into": "north sea"})] == ["rhine"]
        assert store.search((), filter={"length_km": {"$gt": "x"}}) == []

        assert [i.key for i in store.search(("notes",), query="black sea")] == ["danube"]
        shorter = store.search((), query="sea", filter={"length_km": {"$lt": 3000}}, limit=5)
        assert {i.key for i in shorter} == {"rhine", "danube"}
        assert store.search(("archive",), query="danube") == []

        assert store.list_namespaces() == [("archive",), ("notes", "lakes"), ("notes", "rivers")]
        assert store.list_namespaces(prefix=("notes",)) == [("notes", "lakes"), ("notes", "rivers")]
        assert store.list_namespaces(suffix=("rivers",)) == [("notes", "rivers")]
        assert store.list_namespaces(prefix=("*", "lakes")) == [("notes", "lakes")]
        assert store.list_namespaces(max_depth=1) == [("archive",), ("notes",)]

        store.delete(("notes", "rivers"), "rhine")
        assert store.get(("notes", "rivers"), "rhine") is None
        assert [h["status"] for h in store.history(("notes", "rivers"), "rhine")] == ["retracted"]
        assert {i.key for i in store.search(("notes",))} == {"danube", "baikal"}
        store.delete(("notes", "rivers"), "rhine")  # nothing active: nothing to do

        # A key put again after a delete starts a new history line.
        store.put(("notes", "rivers"), "rhine", {"flows_into": "north sea", "mouth": "rotterdam"})
        again = store.get(("notes", "rivers"), "rhine")
        assert again is not None and again.created_at == again.updated_at

        with pytest.raises(InvalidNamespaceError):
            store.put(("a/b",), "k", {"v": 1})


def test_disputed_key_and_a_quarantined_put(steme: ServerProcess) -> None:
    mine, theirs = AgentKey.generate(), AgentKey.generate()
    # Five accepted writes make an agent trusted, so its claims count in full.
    for key in (mine, theirs):
        with Client(steme.url, key) as db:
            for n in range(5):
                answer = db.assert_(f"reference city {n}", "population", 10_000 * (n + 1), 0.8,
                                    context=f"warmup/{key.agent_id[:8]}")  # fmt: skip
                assert answer["status"] == "accepted", answer

    with StemeDBStore(steme.url, mine) as store:
        store.put(("facts",), "tallest mountain", {"name": "everest"})
        with Client(steme.url, theirs) as db:
            answer = db.assert_("tallest mountain", "memory", {"name": "k2"}, 0.8, context="facts")
            assert answer["status"] == "accepted", answer

        item = store.get(("facts",), "tallest mountain")
        assert item is not None and item.value == {"name": "everest"}
        belief = item.stemedb.belief
        assert belief is not None and belief.rivals == 1 and belief.supporters == 1
        assert belief.contested and belief.contention > 0.5

        # Back to a value this agent held within the duplicate window: content defense
        # holds it for review, the store says so, and the active value does not change.
        store.put(("facts",), "tallest mountain", {"name": "chomolungma"})
        with pytest.raises(WriteQuarantined) as held:
            store.put(("facts",), "tallest mountain", {"name": "everest"})
        assert held.value.reason == "Duplicate" and held.value.quarantine_id
        current = store.get(("facts",), "tallest mountain")
        assert current is not None and current.value == {"name": "chomolungma"}
        statuses = [h["status"] for h in store.history(("facts",), "tallest mountain")]
        assert statuses == ["quarantined", "active", "superseded"]

    quiet = StemeDBStore(steme.url, mine, on_quarantine="ignore")
    quiet.put(("facts",), "tallest mountain", {"name": "everest"})
    quiet.close()
