"""A query parameter a route does not know is refused with 422 naming it, like an
unknown body field: ``?subjekt=paris`` must not silently answer with everything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from stemedb.engine import Database
from stemedb.http import create_app
from stemedb.settings import load_settings

TOKEN = "unknown-query-token"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("uq") / "d"
    db = Database(load_settings(env={"STEMEDB_ADMIN_TOKEN": TOKEN},
                                overrides={"server.data_dir": str(data)}))
    with TestClient(create_app(db)) as c:
        yield c


@pytest.mark.parametrize(("path", "good"), [
    ("/v1/assertions", "subject=paris"),
    ("/v1/search", "q=paris"),
    ("/v1/beliefs", "subject=paris"),
    ("/v1/disputes", "limit=5"),
    ("/v1/admin/quarantine", "status=pending"),
    ("/v1/admin/audit", "limit=5"),
])
def test_an_unknown_parameter_is_refused_naming_it(api: TestClient, path: str,
                                                   good: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert api.get(f"{path}?{good}", headers=auth).status_code == 200
    r = api.get(f"{path}?{good}&subjekt=paris&limt=3", headers=auth)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["subjekt", "limt"]


def test_every_known_parameter_is_still_accepted(api: TestClient) -> None:
    q = ("subject=a&predicate=b&object=c&agent_id=" + "a" * 64 + "&context=d"
         "&since=2026-01-01T00:00:00Z&until=2030-01-01T00:00:00Z&as_of=lsn:0"
         "&valid_at=2020-01-01T00:00:00%2B02:00&include_inactive=true&limit=10")
    assert api.get(f"/v1/assertions?{q}").status_code == 200
    b = "subject=a&predicate=b&context=d&as_of=lsn:0&valid_at=1990-01-01T00:00:00Z"
    assert api.get(f"/v1/beliefs?{b}").status_code == 200
