"""The example site under gunicorn (sync workers) on a free loopback port, and its seeder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


#: Settings of the run (``project/settings.py`` turns every AUTHDEVICE_* variable into a
#: setting). The send limits are lifted, not switched off: every code request still counts
#: its IP and identifier in the cache, it just never hits the limit.
RUN_SETTINGS = {
    "AUTHDEVICE_SEND_LIMIT_PER_IP": "1000000000",
    "AUTHDEVICE_SEND_LIMIT_PER_IDENTIFIER": "1000000000",
    "AUTHDEVICE_CHALLENGE_LIFETIME": "600",  # the most allowed; seeded codes wait for a run
    "AUTHDEVICE_AUTHORIZATION_CODE_LIFETIME": "300",
    # Code mail goes through authdevice's email channel and Django's mail framework into a
    # no-op backend: rendered, never delivered.
    "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
}


def site_env(*, db_path: Path, secret_key: str, issuer: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in _DROP and not k.startswith(_DROP_PREFIXES)
    }
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.settings",
        DATABASE_URL=f"sqlite:///{db_path}",
        DEBUG="0",
        SECRET_KEY=secret_key,
        AUTHDEVICE_ISSUER=issuer,
        LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        PYTHONDONTWRITEBYTECODE="1",
        **RUN_SETTINGS,
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


class RedisServer:
    """A throw-away ``redis-server`` on a free loopback port (the broker of the ``broker``
    site): no persistence, in its own process group, stopped with the run."""

    def __init__(self, workdir: Path, log: IO[str]) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        cmd = [exe, "--bind", LOOPBACK, "--port", str(self.port), "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes"]
        self.proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.info()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start; see its log") from None
                time.sleep(0.05)

    def _command(self, line: str) -> bytes:
        """One inline command on a short connection of our own (Redis counts it too);
        returns the reply's payload (bulk string or integer)."""
        with socket.create_connection((LOOPBACK, self.port), timeout=2) as sock:
            sock.sendall(line.encode() + b"\r\n")
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("redis closed the connection")
                data += chunk
                header, sep, rest = data.partition(b"\r\n")
                if not sep:
                    continue
                if header[:1] in (b":", b"+"):
                    return header[1:]
                if header[:1] == b"-":
                    raise OSError(f"redis: {header[1:].decode(errors='replace')}")
                if header[:1] == b"$" and len(rest) >= int(header[1:]):
                    return rest[: int(header[1:])]

    def info(self) -> dict[str, str]:
        values = {}
        for line in self._command("INFO").decode().splitlines():
            name, sep, value = line.partition(":")
            if sep:
                values[name] = value
        return values

    def queued(self, queue: str = "celery") -> int:
        """Messages waiting in a Celery queue (nobody consumes them in a benchmark)."""
        return int(self._command(f"LLEN {queue}"))

    def connections_received(self) -> int:
        return int(self.info()["total_connections_received"])

    def stop(self) -> None:
        _stop_group(self.proc, grace=5)
