"""Django's SQLite backend, waiting for the write lock in fine steps.

With ``transaction_mode = "IMMEDIATE"`` every write transaction takes SQLite's single write
lock at ``BEGIN``, and a write outside a transaction (autocommit) takes it for its one
statement. When the lock is taken, SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20,
25 ... ms between tries: a worker that loses by 50 µs idles for at least a millisecond,
several times longer than our writes hold the lock (about 0.05-0.3 ms, see
benchmarks/README.md). In that mode this backend turns SQLite's busy handler off and
waits itself: ``BEGIN IMMEDIATE`` and every statement run outside a transaction are
retried after 50 µs, then twice as long each time up to 2 ms, until the configured
timeout (``OPTIONS["timeout"]``, default 5 s) runs out. Statements inside a transaction
need no retry: ``BEGIN IMMEDIATE`` already holds the lock. The cursor also caches the
``%s`` -> ``?`` rewrite of each statement. Other transaction modes are Django's backend
unchanged (apart from that cache).

Use it as ``ENGINE: "authdevice.db.backends.sqlite3"`` together with
``OPTIONS: {"transaction_mode": "IMMEDIATE"}``; the example site does.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db.backends.sqlite3 import base

FIRST_SLEEP = 0.00005
MAX_SLEEP = 0.002

T = TypeVar("T")


@functools.lru_cache(maxsize=1024)
def _qmark(query: str) -> str:
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


def _is_busy(exc: BaseException) -> bool:
    # SQLITE_BUSY surfaces as "database is locked".
    text = str(exc.__cause__ or exc)
    return "database is locked" in text or "database is busy" in text


def _retry_while_busy(run: Callable[[], T], wait: float) -> T:
    """``run()``, tried again in short, growing sleeps while SQLite reports the database
    locked, for at most ``wait`` seconds."""
    deadline = time.monotonic() + wait
    delay = FIRST_SLEEP
    while True:
        try:
            return run()
        except base.Database.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, MAX_SLEEP)


class CursorWrapper(base.SQLiteCursorWrapper):
    """Django's cursor, remembering each statement's ``%s`` -> ``?`` conversion (the regex
    over the whole statement otherwise runs on every execute, ~20-40 µs for a join), and
    retrying statements outside a transaction while the database is locked when the
    connection's busy handler is off (``lock_wait`` is then the longest wait)."""

    lock_wait: float | None = None

    def convert_query(self, query: str, *, param_names: list[str] | None = None) -> str:
        if param_names is None:
            return _qmark(query)
        return super().convert_query(query, param_names=param_names)

    def execute(self, query: str, params: Any = None) -> Any:
        if self.lock_wait is None or self.connection.in_transaction:
            return super().execute(query, params)
        return _retry_while_busy(
            lambda: super(CursorWrapper, self).execute(query, params), self.lock_wait
        )

    def executemany(self, query: str, param_list: Any) -> Any:
        if self.lock_wait is None or self.connection.in_transaction:
            return super().executemany(query, param_list)
        # Outside a transaction every row commits on its own, so a retry could repeat rows:
        # SQLite's own busy handler waits instead (Django never gets here: bulk writes run
        # in a transaction).
        self.connection.execute(f"PRAGMA busy_timeout = {int(self.lock_wait * 1000)}")
        try:
            return super().executemany(query, param_list)
        finally:
            self.connection.execute("PRAGMA busy_timeout = 0")


class DatabaseWrapper(base.DatabaseWrapper):
    #: Seconds to wait for the write lock; set on connecting, in IMMEDIATE mode only
    #: (None: SQLite's own busy handler waits, as in Django's backend).
    _lock_wait: float | None = None

    def create_cursor(self, name: str | None = None) -> CursorWrapper:
        cursor = self.connection.cursor(factory=CursorWrapper)
        cursor.lock_wait = self._lock_wait
        return cursor

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if self.transaction_mode == "IMMEDIATE":
            # Django's own "BEGIN IMMEDIATE" runs outside a transaction: the cursor retries it.
            self._lock_wait = float(conn_params.get("timeout", 5.0))
            connection.execute("PRAGMA busy_timeout = 0")
        else:
            self._lock_wait = None
        return connection
