"""The fixtures that start real PostgreSQL and Redis servers (tests/services.py)."""

from __future__ import annotations

import psycopg
import pytest
import redis

from tests.services import PostgresServer, RedisServer


def test_redis_answers_ping_and_keeps_data_until_restart(redis_server: RedisServer,
                                                         redis_url: str) -> None:
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping() is True
        client.set("k", "v")
        assert client.get("k") == b"v"
    redis_server.restart()
    with redis.Redis.from_url(redis_url) as client:
        assert client.get("k") is None  # no persistence: a restart is a fresh node


def test_redis_kill_refuses_connections_then_start_serves_again(
        redis_server: RedisServer, redis_url: str) -> None:
    redis_server.kill()
    assert not redis_server.running
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    redis_server.start()
    assert client.ping() is True
    client.close()


def test_redis_url_is_empty_for_each_test(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0
        client.set("left-behind", 1)


def test_postgres_select_one_over_tcp(postgres_server: PostgresServer) -> None:
    assert postgres_server.url.startswith("postgresql://stemedb@127.0.0.1:")
    with psycopg.connect(postgres_server.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert conn.execute("SELECT current_user").fetchone() == ("stemedb",)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_keeps_committed_rows(postgres_server: PostgresServer,
                                               postgres_url: str, mode: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
    held = psycopg.connect(postgres_url)
    postgres_server.restart(mode)
    with pytest.raises(psycopg.OperationalError):  # the old session is gone
        held.execute("SELECT 1")
    held.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT sum(n) FROM t").fetchone() == (3,)


def test_postgres_kill_then_start_recovers(postgres_server: PostgresServer,
                                           postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (7)")
    postgres_server.kill()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_url, connect_timeout=2)
    postgres_server.start()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT n FROM t").fetchone() == (7,)


def test_postgres_url_is_a_fresh_database(postgres_server: PostgresServer,
                                          postgres_url: str) -> None:
    assert postgres_url != postgres_server.url
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
