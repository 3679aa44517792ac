"""Real services for the test suite: PostgreSQL and Redis servers started on 127.0.0.1
(random port, temporary directory) and stopped at exit.

Loaded as a pytest plugin (``-p tests.services`` in pyproject) so PostgreSQL is up before
pytest-django reads the settings. With ``CI`` set, a missing binary is an error, never a skip.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

IN_CI = bool(os.environ.get("CI"))
_started: dict[str, str] = {}


class ServiceUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceUnavailable(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServiceUnavailable(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def postgres_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_postgres_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def start_postgres() -> str:
    """Start a throwaway PostgreSQL server; return its DATABASE_URL."""
    if "postgres" in _started:
        return _started["postgres"]
    bindir = postgres_bindir()
    if bindir is None:
        raise ServiceUnavailable("PostgreSQL binaries not found (apt-get install postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="authdevice-pg-"))
    data = tmp / "data"
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    subprocess.run(
        _as_postgres_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    port = free_port()
    log = open(tmp / "postgres.log", "wb")
    proc = subprocess.Popen(
        _as_postgres_user(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(tmp),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ]
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(stop)
    wait_for_port(port, proc=proc)
    # Accepting TCP is not the same as accepting queries; wait for a real connection.
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2
            ).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    _started["postgres"] = url
    return url


def start_redis() -> str:
    """Start a throwaway Redis server; return its URL."""
    if "redis" in _started:
        return _started["redis"]
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceUnavailable("redis-server not found (apt-get install redis-server)")
    tmp = Path(tempfile.mkdtemp(prefix="authdevice-redis-"))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(stop)
    wait_for_port(port, proc=proc)
    url = f"redis://127.0.0.1:{port}/0"
    _started["redis"] = url
    return url


def require(service: str) -> str:
    """Start ``service`` or, where it cannot run, fail in CI and skip (loudly) elsewhere."""
    starter = {"postgres": start_postgres, "redis": start_redis}[service]
    try:
        return starter()
    except (ServiceUnavailable, OSError, subprocess.CalledProcessError) as exc:
        if IN_CI:
            pytest.fail(f"{service} is required in CI: {exc}", pytrace=False)
        pytest.skip(f"{service} unavailable on this machine: {exc}")
        raise  # unreachable


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    if os.environ.get("AUTHDEVICE_TEST_DB") == "postgres":
        # Before pytest-django imports the settings, which read DATABASE_URL.
        os.environ["DATABASE_URL"] = start_postgres()
