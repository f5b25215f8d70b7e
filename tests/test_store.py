"""The incident store on SQLite and PostgreSQL: idempotent writes, reads, migrations, errors."""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select, text

from drc.incident import (
    AvailabilityChange,
    FailureRecord,
    Incident,
    IncidentNote,
    IncidentRun,
    IncidentUpdate,
)
from drc.store import IncidentStore, StoreError
from drc.store.engine import create, parse_url
from drc.store.migrate import alembic_config
from drc.store.models import Base
from tests.support.net import free_port
from tests.support.postgres import fresh_database, server_problem

HOSTILE = "<script>alert(1)</script>'; DROP TABLE incidents; --"
UNICODE = "échec du réplica — 日本語 🚒 \u202e"
T0 = 1_764_150_000.123456  # 2025-11-26, with microseconds


@pytest.fixture(scope="session")
def postgres_server() -> None:
    # Under CI=true the conftest turns this skip into a failure.
    if problem := server_problem():
        pytest.skip(problem)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of each backend (a fresh PostgreSQL database per test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store/drc.db"
        return
    request.getfixturevalue("postgres_server")
    with fresh_database() as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[IncidentStore]:
    with IncidentStore.open(db_url) as opened:
        yield opened


@pytest.fixture
def raw(db_url: str, store: IncidentStore) -> Iterator[Engine]:
    """An engine of its own on the store's database, to count rows behind the store's back."""
    engine = create(parse_url(db_url))
    yield engine
    engine.dispose()


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(text(table))).scalar_one())


def counts(engine: Engine) -> dict[str, int]:
    tables = ["incidents", "incident_runs", "failures", "availability_changes"]
    return {table: count(engine, table) for table in tables}


def approx_tree(value: Any) -> Any:
    """``value`` (a dataclass, list, dict...) with every float compared to within 1 ms."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {key: approx_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [approx_tree(item) for item in value]
    if isinstance(value, float):
        return pytest.approx(value, abs=1e-3)
    return value


def assert_same(actual: Any, expected: Any) -> None:
    as_tree = asdict(actual) if hasattr(actual, "__dataclass_fields__") else actual
    if isinstance(as_tree, list):
        as_tree = [asdict(item) for item in as_tree]
    assert as_tree == approx_tree(expected)


def make_incident(version: int = 1, **overrides: Any) -> Incident:
    incident = Incident(
        id="orders-20251126-0001",
        service="orders",
        type="replica_failed",
        severity="high",
        cause="orders-a missed 3 heartbeats (last error: connection refused)",
        started_at=T0,
        detected_at=T0 + 1.5,
        replica="orders-a",
        runs=[IncidentRun("monitor-orders", "run-m", "monitor", T0 + 1.5)],
        notes=[IncidentNote(T0 + 1.5, "restart", "orders-a", "restarting orders-a: it is down")],
        version=version,
    )
    return replace(incident, **overrides)


def failure(key: str, at: float = T0, **overrides: Any) -> FailureRecord:
    record = FailureRecord(
        key=key,
        service="orders",
        replica="orders-a",
        type="replica_failed",
        severity="high",
        description=f"failure {key}",
        at=at,
        incident_id="orders-20251126-0001",
    )
    return replace(record, **overrides)


def change(at: float, state: str = "degraded", service: str = "orders") -> AvailabilityChange:
    return AvailabilityChange(service, at, state, f"{service} {state} at {at}")  # type: ignore[arg-type]


def full_update(version: int = 1) -> IncidentUpdate:
    incident = make_incident(version)
    incident.runs.append(IncidentRun("restart-orders-a", None, "restart", T0 + 2))
    return IncidentUpdate(
        incident,
        failures=[failure("orders/orders-a/replica_failed/1"), failure("orders/x/frozen/2")],
        changes=[change(T0), change(T0 + 10, "up")],
    )


# -- idempotency ---------------------------------------------------------------------------


def test_apply_twice_keeps_one_copy(store: IncidentStore, raw: Engine) -> None:
    update = full_update()
    store.apply(update)
    store.apply(update)
    assert counts(raw) == {
        "incidents": 1,
        "incident_runs": 2,
        "failures": 2,
        "availability_changes": 2,
    }
    assert_same(store.incident(update.incident.id), update.incident)  # type: ignore[union-attr]


def test_older_snapshot_after_newer_is_ignored(store: IncidentStore, raw: Engine) -> None:
    newer = make_incident(3, status="resolved", outcome="orders-a restarted", resolved_at=T0 + 9)
    older = make_incident(2, cause="a stale cause", runs=[IncidentRun("late", None, "drain", T0)])
    store.apply(IncidentUpdate(newer))
    store.apply(IncidentUpdate(older, failures=[failure("late/failure")]))
    store.apply(IncidentUpdate(replace(newer, outcome="same version, other text")))
    assert_same(store.incident(newer.id), newer)
    # Failures are facts of their own: recorded whatever the snapshot's version.
    assert [f.key for f in store.failures(since=0)] == ["late/failure"]
    assert count(raw, "incident_runs") == 1


def test_run_id_is_filled_in_later(store: IncidentStore, raw: Engine) -> None:
    pending = IncidentRun("restart-orders-a", None, "restart", T0 + 2)
    first = make_incident(1, runs=[pending])
    known = replace(pending, run_id="run-1")
    store.apply(IncidentUpdate(first))
    store.apply(IncidentUpdate(make_incident(2, runs=[known])))
    store.apply(IncidentUpdate(first))  # late and older: changes nothing
    stored = store.incident(first.id)
    assert stored is not None
    assert [(r.workflow_id, r.run_id) for r in stored.runs] == [("restart-orders-a", "run-1")]
    # A second run of the same workflow (continue-as-new, a retry) is a run of its own.
    again = IncidentRun("restart-orders-a", "run-2", "restart", T0 + 5)
    store.apply(IncidentUpdate(make_incident(3, runs=[known, again])))
    stored = store.incident(first.id)
    assert stored is not None
    assert [r.run_id for r in stored.runs] == ["run-1", "run-2"]
    assert count(raw, "incident_runs") == 2


def test_failures_and_changes_are_deduplicated(store: IncidentStore, raw: Engine) -> None:
    store.apply(IncidentUpdate(None, failures=[failure("k1")], changes=[change(T0)]))
    store.apply(
        IncidentUpdate(
            None,
            failures=[failure("k1", description="rewritten"), failure("k2", at=T0 + 1)],
            changes=[change(T0), change(T0, "down"), change(T0, service="billing")],
        )
    )
    assert [(f.key, f.description) for f in store.failures(since=0)] == [
        ("k2", "failure k2"),
        ("k1", "failure k1"),  # the first record of a key stays
    ]
    assert count(raw, "availability_changes") == 3


def test_concurrent_apply_from_8_threads(store: IncidentStore, raw: Engine) -> None:
    versions = [full_update(v) for v in range(1, 5)]
    for v, update in enumerate(versions, start=1):
        assert update.incident is not None
        update.incident.runs[1].run_id = None if v == 1 else "run-restart"
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        mine = versions[:]
        random.Random(seed).shuffle(mine)
        try:
            barrier.wait(timeout=30)
            for update in mine:
                store.apply(update)
        except BaseException as err:  # reported below, with the thread's own traceback
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert counts(raw) == {
        "incidents": 1,
        "incident_runs": 2,
        "failures": 2,
        "availability_changes": 2,
    }
    assert_same(store.incident(versions[-1].incident.id), versions[-1].incident)  # type: ignore[union-attr]


def _open_and_apply(url: str, barrier: Any, results: Any, index: int) -> None:
    """Child process: open the (fresh) store at the same moment as its siblings, write."""
    try:
        barrier.wait(timeout=60)
        with IncidentStore.open(url) as store:
            store.apply(IncidentUpdate(make_incident(), failures=[failure(f"child/{index}")]))
        results.put((index, None))
    except BaseException:
        results.put((index, traceback.format_exc()))


def test_processes_open_a_fresh_database_at_once(db_url: str) -> None:
    context = multiprocessing.get_context("spawn")  # no fork of a threaded test process
    children = 4
    barrier, results = context.Barrier(children), context.Queue()
    processes = [
        context.Process(target=_open_and_apply, args=(db_url, barrier, results, i))
        for i in range(children)
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    assert outcomes == dict.fromkeys(range(children)), outcomes
    with IncidentStore.open(db_url) as store:
        assert len(store.incidents()) == 1
        assert len(store.failures(since=0)) == children


# -- reads ---------------------------------------------------------------------------------


def test_every_field_round_trips(store: IncidentStore) -> None:
    incident = make_incident(
        7,
        type="operator_failover",
        severity="critical",
        cause=f"{HOSTILE} {UNICODE}",
        status="resolved",
        outcome=f"failed over to orders-b {UNICODE}",
        mitigated_at=T0 + 3.25,
        resolved_at=T0 + 60.000001,
        near_miss=False,
        forced_by="Zoë <ops@example.com>",
        runs=[
            IncidentRun("failover-orders", "run-f", "failover", T0 + 3),
            IncidentRun("monitor-orders", "run-m", "monitor", T0),
            IncidentRun("reprotect-orders", None, "reprotect", T0 + 30),
        ],
        notes=[IncidentNote(T0 + 3, "failover", None, HOSTILE), IncidentNote(T0 + 1, "x", "a", "")],
    )
    failures = [failure("f1", description=HOSTILE), failure("f2", replica=None, incident_id=None)]
    changes = [change(T0, "down"), AvailabilityChange("orders", T0 + 3, "up", UNICODE)]
    store.apply(IncidentUpdate(incident, failures, changes))
    expected = replace(incident, runs=sorted(incident.runs, key=lambda r: r.started_at))
    assert_same(store.incident(incident.id), expected)
    assert_same(store.failures(since=T0 - 1), failures)
    assert_same(store.changes("orders"), changes)
    assert store.incident("no-such-incident") is None


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kathmandu"])
def test_utc_times_round_trip_whatever_the_zones(
    db_url: str, zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process's zone (TZ) and the PostgreSQL session's (PGTZ) must not shift any instant.
    monkeypatch.setenv("TZ", zone)
    monkeypatch.setenv("PGTZ", zone)
    time.tzset()
    try:
        moments = [0.000001, 1_711_846_799.999999, T0, 4_102_444_800.5]  # DST edge, 2100
        with IncidentStore.open(db_url) as store:
            for n, moment in enumerate(moments):
                store.apply(IncidentUpdate(make_incident(id=f"i{n}", started_at=moment)))
            stored = {i.id: i.started_at for i in store.incidents()}
        assert stored == {f"i{n}": pytest.approx(m, abs=1e-3) for n, m in enumerate(moments)}
    finally:
        monkeypatch.undo()
        time.tzset()


def test_queries_filter_and_order(store: IncidentStore) -> None:
    def incident(id: str, service: str, at: float, **kw: Any) -> Incident:
        return make_incident(id=id, service=service, started_at=at, detected_at=at, **kw)

    store.apply(IncidentUpdate(incident("o1", "orders", T0, status="resolved")))
    store.apply(IncidentUpdate(incident("o2", "orders", T0 + 100)))
    store.apply(IncidentUpdate(incident("o3", "orders", T0 + 200, near_miss=True)))
    store.apply(IncidentUpdate(incident("b1", "billing", T0 + 50)))
    store.apply(
        IncidentUpdate(
            None,
            failures=[
                failure("a", T0),
                failure("b", T0 + 10, service="billing"),
                failure("c", T0 + 20),
            ],
            changes=[change(T0 + 5, "up"), change(T0, "down"), change(T0 + 1, service="cart")],
        )
    )

    assert [i.id for i in store.incidents()] == ["o3", "o2", "b1", "o1"]
    assert [i.id for i in store.incidents(since=T0 + 50)] == ["o3", "o2", "b1"]
    assert [i.id for i in store.incidents(service="orders", near_misses=False)] == ["o2", "o1"]
    assert [i.id for i in store.open_incidents()] == ["o3", "o2", "b1"]
    assert [i.id for i in store.open_incidents("billing")] == ["b1"]
    assert [f.key for f in store.failures(since=T0 + 5)] == ["c", "b"]
    assert [f.key for f in store.failures(since=0, service="orders")] == ["c", "a"]
    assert [(c.service, c.state) for c in store.changes(None, None, None)] == [
        ("orders", "down"),
        ("cart", "degraded"),
        ("orders", "up"),
    ]
    assert [c.state for c in store.changes("orders", since=T0, until=T0 + 5)] == ["down"]
    assert store.changes("orders", since=T0 + 6, until=None) == []
    before = store.last_change_before("orders", T0 + 5)
    assert before is not None and before.state == "down"
    assert store.last_change_before("orders", T0) is None  # strictly before
    assert store.services() == ["billing", "cart", "orders"]


def test_reports_are_saved_replaced_and_read(store: IncidentStore) -> None:
    incident = make_incident()
    store.apply(IncidentUpdate(incident))
    assert store.report(incident.id) is None
    store.save_report(incident.id, "# first", "<h1>first</h1>", T0, [])
    store.save_report(incident.id, f"# {UNICODE}", f"<p>{HOSTILE}</p>", T0 + 1, ["history"])
    report = store.report(incident.id)
    assert report is not None
    assert (report.markdown, report.html, report.missing) == (
        f"# {UNICODE}",
        f"<p>{HOSTILE}</p>",
        ["history"],
    )
    assert report.generated_at == pytest.approx(T0 + 1, abs=1e-3)
    with pytest.raises(StoreError, match="no-such-incident"):
        store.save_report("no-such-incident", "", "", T0, [])


# -- opening -------------------------------------------------------------------------------


def test_migrations_produce_exactly_the_models(store: IncidentStore, raw: Engine) -> None:
    with raw.connect() as conn:
        context = MigrationContext.configure(conn)
        assert compare_metadata(context, Base.metadata) == []
        head = ScriptDirectory.from_config(alembic_config(str(raw.url))).get_current_head()
        assert context.get_current_revision() == head


def test_reopening_keeps_the_data(db_url: str) -> None:
    with IncidentStore.open(db_url) as store:
        store.apply(full_update())
    with IncidentStore.open(db_url) as store:
        assert len(store.incidents()) == 1


def test_url_comes_from_the_environment(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRC_DATABASE_URL", db_url)
    with IncidentStore.open(home=Path("/nonexistent/home/is/not/used")) as store:
        assert store.url == parse_url(db_url).render_as_string(hide_password=True)


def test_sqlite_home_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRC_DATABASE_URL", raising=False)
    monkeypatch.delenv("DRC_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    IncidentStore.open().close()
    assert (tmp_path / ".drc" / "drc.db").is_file()
    monkeypatch.setenv("DRC_HOME", str(tmp_path / "from-env"))
    IncidentStore.open().close()
    assert (tmp_path / "from-env" / "drc.db").is_file()
    IncidentStore.open(home=tmp_path / "from-arg").close()
    assert (tmp_path / "from-arg" / "drc.db").is_file()


def _bad_sqlite_urls(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "garbage.db").write_bytes(b"this is not a database file" * 100)
    return [
        (f"sqlite:///{tmp_path}/a-file/drc.db", "cannot create the directory"),
        (f"sqlite:///{tmp_path}/garbage.db", "not a database"),
    ]


def _bad_postgres_urls() -> list[tuple[str, str]]:
    port = free_port()
    return [
        (f"postgresql://drc:s3cret@127.0.0.1:{port}/drc", f"127.0.0.1:{port}/drc"),
        ("postgresql://postgres:s3cret@127.0.0.1:5432/drc_no_such_db", "does not exist"),
        ("postgresql://drc:s3cret@127.0.0.1:notaport/drc", "bad database URL"),
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "other"])
def test_bad_url_raises_a_clear_store_error(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        cases = _bad_sqlite_urls(tmp_path)
    elif backend == "postgresql":
        request.getfixturevalue("postgres_server")
        cases = _bad_postgres_urls()
    else:
        cases = [
            ("not a url", "bad database URL"),
            ("mysql://u:s3cret@h/db", "unsupported"),
            ("sqlite://", "in-memory"),
        ]
    for url, expected in cases:
        with pytest.raises(StoreError) as caught:
            IncidentStore.open(url)
        message = str(caught.value)
        assert expected in message, message
        assert "s3cret" not in message, message
