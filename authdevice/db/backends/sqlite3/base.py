"""Django's SQLite backend, waiting for the write lock in fine steps.

With ``transaction_mode = "IMMEDIATE"`` every write transaction takes SQLite's single write
lock at ``BEGIN``. When the lock is taken, SQLite's own busy handler sleeps 1, 2, 5, 10,
15, 20, 25 ... ms between tries: a worker that loses by 50 µs idles for at least a
millisecond, several times longer than our write transactions hold the lock (about
0.1-0.5 ms, see benchmarks/README.md). This backend tries ``BEGIN IMMEDIATE`` itself with
SQLite's busy timeout off, sleeping 50 µs, then twice as long each time up to 2 ms, until
the configured timeout (``OPTIONS["timeout"]``, default 5 s) runs out. Everything else
is Django's backend unchanged, and other statements keep the normal busy timeout; the
cursor also caches the ``%s`` -> ``?`` rewrite of each statement.

Use it as ``ENGINE: "authdevice.db.backends.sqlite3"`` together with
``OPTIONS: {"transaction_mode": "IMMEDIATE"}``; the example site does.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError

FIRST_SLEEP = 0.00005
MAX_SLEEP = 0.002


@functools.lru_cache(maxsize=1024)
def _qmark(query: str) -> str:
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class CursorWrapper(base.SQLiteCursorWrapper):
    """Django's cursor, remembering each statement's ``%s`` -> ``?`` conversion: the regex
    over the whole statement otherwise runs on every execute (~20-40 µs for a join)."""

    def convert_query(self, query: str, *, param_names: list[str] | None = None) -> str:
        if param_names is None:
            return _qmark(query)
        return super().convert_query(query, param_names=param_names)


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name: str | None = None) -> CursorWrapper:
        return self.connection.cursor(factory=CursorWrapper)

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        self._lock_wait = float(params.get("timeout", 5.0))
        return params

    def _start_transaction_under_autocommit(self) -> None:
        if self.transaction_mode != "IMMEDIATE":
            super()._start_transaction_under_autocommit()
            return
        raw = self.connection
        cursor = self.cursor()
        wait = getattr(self, "_lock_wait", 5.0)
        deadline = time.monotonic() + wait
        delay = FIRST_SLEEP
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                    return
                except OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() >= deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, MAX_SLEEP)
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")


def _is_busy(exc: BaseException) -> bool:
    # SQLITE_BUSY surfaces as "database is locked".
    text = str(exc.__cause__ or exc)
    return "database is locked" in text or "database is busy" in text
