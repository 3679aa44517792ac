"""The example site's SQLite backend: BEGIN IMMEDIATE waits for the write lock in short
steps, gives up after the configured timeout, and leaves the busy timeout as it was."""

from __future__ import annotations

import threading

import pytest
from django.db.utils import OperationalError

from authdevice.db.backends.sqlite3.base import DatabaseWrapper


def wrapper(path, timeout: float = 5) -> DatabaseWrapper:
    settings = {
        "NAME": str(path),
        "ENGINE": "authdevice.db.backends.sqlite3",
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL;",
            "transaction_mode": "IMMEDIATE",
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
    assert timeouts == [5000]


def test_gives_up_after_the_timeout(db_path):
    holder, waiter = wrapper(db_path), wrapper(db_path, timeout=0.3)
    holder._start_transaction_under_autocommit()
    try:
        with pytest.raises(OperationalError, match="locked"):
            write(waiter, 2)
    finally:
        holder.connection.rollback()
    assert busy_timeout(waiter) == 300
    write(waiter, 3)  # and works again once the lock is free


def test_other_transaction_modes_are_django_s(db_path):
    w = wrapper(db_path)
    w.transaction_mode = None
    w._start_transaction_under_autocommit()
    assert w.connection.in_transaction
    w.connection.rollback()
