"""The example site under gunicorn (sync workers) on a free loopback port, and its seeder."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"

# Variables of the caller's environment that would change what is measured.
_DROP_PREFIXES = ("AUTHDEVICE_", "GUNICORN_", "SQLITE_", "DJANGO_")
_DROP = {
    "DATABASE_URL",
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "DEBUG",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "WEB_CONCURRENCY",
    "LOG_LEVEL",
    "SECURE_SSL",
    "BEHIND_PROXY",
    "ALLOWED_HOSTS",
    "AUTH_USER_MODEL",
    "EMAIL_BACKEND",
    "EXTRA_INSTALLED_APPS",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def site_env(*, db_path: Path, secret_key: str, issuer: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in _DROP and not k.startswith(_DROP_PREFIXES)
    }
    env.update(
        DJANGO_SETTINGS_MODULE="project.settings",
        DATABASE_URL=f"sqlite:///{db_path}",
        DEBUG="0",
        SECRET_KEY=secret_key,
        AUTHDEVICE_ISSUER=issuer,
        LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _stop_group(proc: subprocess.Popen[Any], grace: float) -> None:
    """Stop a child started with ``start_new_session=True`` (and its process group)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Seeder:
    """``python -m benchmarks.seeder`` kept running; one JSON command, one JSON answer."""

    def __init__(self, env: dict[str, str], log: IO[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.seeder"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )

    def call(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the seeder exited ({self.proc.poll()}); see its log")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"seeder: {reply.get('error')}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        _stop_group(self.proc, grace=5)


class Gunicorn:
    """gunicorn with ``project/gunicorn.conf.py``, sync workers, on ``127.0.0.1:port``."""

    def __init__(self, env: dict[str, str], port: int, workers: int, log: IO[str]) -> None:
        self.port = port
        self.base_url = f"http://{LOOPBACK}:{port}"
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "project" / "gunicorn.conf.py")]
        cmd += ["--bind", f"{LOOPBACK}:{port}", "--workers", str(workers)]
        cmd += ["--worker-class", "sync", "project.wsgi:application"]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see its log")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer {path} within {timeout:.0f} s: {last}")

    def stop(self) -> None:
        _stop_group(self.proc, grace=10)


def request(
    base_url: str, method: str, path: str, headers: dict[str, str], body: str | None
) -> tuple[int, bytes]:
    """One request (sanity checks before the timed runs); returns status and body."""
    req = urllib.request.Request(
        base_url + path,
        method=method,
        headers=headers,
        data=body.encode() if body is not None else None,
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
