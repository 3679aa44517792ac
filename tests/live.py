"""A live example site in a separate process (runserver, gunicorn or uvicorn) on
127.0.0.1 with its own SQLite file: for tests that need a real HTTP server (SDKs,
header handling, browsers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

#: A Celery worker of the example site for tests: one process (solo pool), quiet, and no
#: broker chatter with other workers (run from ``ROOT`` with the site's environment).
CELERY_WORKER = [
    PY,
    "-m",
    "celery",
    "-A",
    "project",
    "worker",
    "-P",
    "solo",
    "-l",
    "warning",
    "--without-heartbeat",
    "--without-gossip",
    "--without-mingle",
]


@dataclass
class LiveSite:
    url: str
    env: dict[str, str]
    api_key_id: str
    secret_key: str
    log: Path
    extra: dict[str, object] = field(default_factory=dict)

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [PY, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout


def site_env(tmp: Path, **overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "SECRET_KEY": "live-test-secret-key-" + "x" * 40,
        "DEBUG": "0",
        "AUTHDEVICE_ISSUER": "http://127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    env.update(overrides)
    return env


@contextmanager
def live_site(
    server: str = "gunicorn",
    redirect_urls: tuple[str, ...] = (),
    create_args: tuple[str, ...] = (),
    **env_overrides: str,
) -> Iterator[LiveSite]:
    """Start the example site. ``create_args`` go to authdevice_create_application (e.g.
    ``("--allow-unauthenticated-enrolment",)``); ``env_overrides`` to its environment."""
    tmp = Path(tempfile.mkdtemp(prefix="authdevice-live-"))
    port = free_port()
    env = site_env(tmp, AUTHDEVICE_ISSUER=f"http://127.0.0.1:{port}", **env_overrides)
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    args = ["authdevice_create_application", "--name", "Live", "--json"]
    for url in redirect_urls:
        args += ["--redirect-url", url]
    args += list(create_args)
    created = json.loads(
        subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout
    )
    if server == "gunicorn":
        cmd = [
            PY,
            "-m",
            "gunicorn",
            "-c",
            "project/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "project.wsgi:application",
        ]
    elif server == "runserver":
        cmd = [PY, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    else:
        raise ValueError(server)
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(port, timeout=30, proc=proc)
        yield LiveSite(
            url=f"http://127.0.0.1:{port}",
            env=env,
            api_key_id=created["api_key_id"],
            secret_key=created["secret_key"],
            log=log,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
