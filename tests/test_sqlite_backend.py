"""The example site's SQLite backend: with SQLite's busy handler off, BEGIN IMMEDIATE and
every statement outside a transaction wait for the write lock in short steps and give up
after the configured timeout; other transaction modes keep SQLite's busy handler."""

from __future__ import annotations

import threading

import pytest
from django.db.utils import OperationalError

from authdevice.db.backends.sqlite3.base import DatabaseWrapper


def wrapper(path, timeout: float = 5, mode: str | None = "IMMEDIATE") -> DatabaseWrapper:
    settings = {
        "NAME": str(path),
        "ENGINE": "authdevice.db.backends.sqlite3",
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL;",
            "transaction_mode": mode,
            "timeout": timeout,
        },
        "TIME_ZONE": None,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "AUTOCOMMIT": True,
        "ATOMIC_REQUESTS": False,
        "USER": "",
        "PASSWORD": "",
        "HOST": "",
        "PORT": "",
        "TEST": {},
    }
    w = DatabaseWrapper(settings, alias=f"lockwait-{id(settings)}")
    w.ensure_connection()
    return w


def write(w: DatabaseWrapper, value: int) -> None:
    w._start_transaction_under_autocommit()
    with w.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (%s)", [value])
    w.connection.commit()


def busy_timeout(w: DatabaseWrapper) -> int:
    with w.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker):
    # These tests open their own SQLite files, not the test database.
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "lock.sqlite3"
    w = wrapper(path)
    with w.cursor() as cursor:
        cursor.execute("CREATE TABLE t (v integer)")
    w.close()
    return path


def test_waits_for_the_lock_and_then_writes(db_path):
    holder = wrapper(db_path)
    holder._start_transaction_under_autocommit()
    with holder.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (1)")
    started = threading.Event()
    errors: list[BaseException] = []
    timeouts: list[int] = []

    def run() -> None:
        waiter = wrapper(db_path)  # a connection belongs to its thread
        started.set()
        try:
            write(waiter, 2)
            timeouts.append(busy_timeout(waiter))
        except BaseException as exc:
            errors.append(exc)
        finally:
            waiter.close()

    thread = threading.Thread(target=run)
    thread.start()
    started.wait()
    thread.join(0.2)
    assert thread.is_alive()  # still waiting: the holder has the lock
    holder.connection.commit()
    thread.join(5)
    assert not thread.is_alive() and not errors
    with holder.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY v")
        assert [r[0] for r in cursor.fetchall()] == [1, 2]
    assert timeouts == [0]  # SQLite's handler stays off: the backend waits


def test_gives_up_after_the_timeout(db_path):
    holder, waiter = wrapper(db_path), wrapper(db_path, timeout=0.3)
    holder._start_transaction_under_autocommit()
    try:
        with pytest.raises(OperationalError, match="locked"):
            write(waiter, 2)
    finally:
        holder.connection.rollback()
    write(waiter, 3)  # and works again once the lock is free


def test_other_transaction_modes_are_django_s(db_path):
    w = wrapper(db_path, mode=None)
    assert busy_timeout(w) == 5000  # SQLite's own busy handler
    w._start_transaction_under_autocommit()
    assert w.connection.in_transaction
    w.connection.rollback()


def _in_thread(target) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_autocommit_statements_wait_for_the_lock_and_give_up_after_the_timeout(db_path):
    holder = wrapper(db_path)
    holder._start_transaction_under_autocommit()
    with holder.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (1)")

    def insert_alone(timeout: float, value: int) -> None:
        w = wrapper(db_path, timeout=timeout)
        try:
            with w.cursor() as cursor:  # autocommit: one statement, one transaction
                cursor.execute("INSERT INTO t (v) VALUES (%s)", [value])
        finally:
            w.close()

    quick, quick_errors = _in_thread(lambda: insert_alone(0.2, 2))
    patient, patient_errors = _in_thread(lambda: insert_alone(5, 3))
    quick.join(5)
    assert len(quick_errors) == 1 and "locked" in str(quick_errors[0])
    assert patient.is_alive()  # still waiting
    holder.connection.commit()
    patient.join(5)
    assert not patient.is_alive() and not patient_errors
    with holder.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY v")
        assert [r[0] for r in cursor.fetchall()] == [1, 3]


def test_executemany_outside_a_transaction_waits_with_sqlite_s_handler(db_path):
    holder = wrapper(db_path)
    holder._start_transaction_under_autocommit()
    after: list[int] = []

    def insert_many() -> None:
        waiter = wrapper(db_path)  # a connection belongs to its thread
        try:
            with waiter.cursor() as cursor:
                cursor.executemany("INSERT INTO t (v) VALUES (%s)", [[7], [8]])
            after.append(busy_timeout(waiter))
        finally:
            waiter.close()

    thread, errors = _in_thread(insert_many)
    thread.join(0.2)
    assert thread.is_alive()
    holder.connection.rollback()
    thread.join(5)
    assert not errors
    assert after == [0]  # the backend's own waiting is back
    with holder.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY v")
        assert [r[0] for r in cursor.fetchall()] == [7, 8]
