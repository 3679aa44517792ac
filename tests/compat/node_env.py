"""Node side of the SDK compatibility tests: Cotter's real JavaScript SDKs from npm.

``NodeEnv.get()`` finds ``node``/``npm``, installs ``tests/compat/node/node_modules`` with
``npm ci`` (``npm install`` when there is no lock file) when it is missing or older than
``package.json``/``package-lock.json`` (a stamp in ``node_modules`` records what it was
installed from), bundles react-native-cotter's TrustedDevice (``node build.mjs``) when the
bundle is older than its inputs, and runs the driver scripts with a bounded timeout.

Without node/npm (or with an old node) the tests are skipped with the reason; with ``CI``
set they fail instead. Installs and builds hold a file lock, so parallel workers share them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_MODULES = NODE_DIR / "node_modules"
STAMP = NODE_MODULES / ".authdevice-install-stamp"
BUNDLE = NODE_DIR / "build" / "rn-trusted-device.cjs"
BUNDLE_INPUTS = ("build.mjs", "package-lock.json", "src", "stubs")
MIN_NODE_MAJOR = 20
IN_CI = bool(os.environ.get("CI"))
INSTALL_TIMEOUT = 600
BUILD_TIMEOUT = 120
DEFAULT_TIMEOUT = 60


class NodeDriverError(AssertionError):
    """A driver script crashed, timed out or printed no JSON."""


def unavailable(reason: str) -> NoReturn:
    """Skip (locally) or fail (in CI) the calling test: the JS SDKs cannot run here."""
    if IN_CI:
        pytest.fail(f"CI is set and the Node SDK tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"Node SDK tests need Node.js >= {MIN_NODE_MAJOR} and npm: {reason}")


@contextmanager
def _locked() -> Iterator[None]:
    key = hashlib.sha256(str(NODE_DIR).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"authdevice-compat-node-{key}.lock"
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _install_fingerprint(node_version: str) -> str:
    digest = hashlib.sha256(node_version.encode())
    for name in ("package.json", "package-lock.json"):
        path = NODE_DIR / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
    return digest.hexdigest()


def _newest_mtime(*names: str) -> float:
    newest = 0.0
    for name in names:
        path = NODE_DIR / name
        paths = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for p in paths:
            newest = max(newest, p.stat().st_mtime)
    return newest


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


@dataclass
class NodeEnv:
    node: str
    npm: str
    version: str
    _ready: bool = field(default=False, repr=False)

    _instance: ClassVar[NodeEnv | None] = None  # one per process

    @classmethod
    def get(cls) -> NodeEnv:
        """The prepared environment (installed + bundled), or skip/fail the test."""
        if cls._instance is None:
            node = shutil.which("node")
            npm = shutil.which("npm")
            if node is None or npm is None:
                unavailable(f"node={node!r}, npm={npm!r} not found on PATH")
            assert node is not None and npm is not None
            try:
                version = subprocess.run(
                    [node, "--version"], capture_output=True, text=True, timeout=30, check=True
                ).stdout.strip()
            except (OSError, subprocess.SubprocessError) as exc:
                unavailable(f"`node --version` failed: {exc}")
            match = re.match(r"v(\d+)\.", version)
            if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
                unavailable(f"node {version} is too old")
            cls._instance = cls(node=node, npm=npm, version=version)
        env = cls._instance
        env.prepare()
        return env

    # -- install and build -------------------------------------------------------------

    def prepare(self) -> None:
        if self._ready:
            return
        with _locked():
            self._install()
            self._build()
        self._ready = True

    def _install(self) -> None:
        fingerprint = _install_fingerprint(self.version)
        if NODE_MODULES.is_dir() and STAMP.exists() and STAMP.read_text() == fingerprint:
            return
        has_lock = (NODE_DIR / "package-lock.json").exists()
        cmd = [self.npm, "ci" if has_lock else "install", "--no-audit", "--no-fund"]
        try:
            done = subprocess.run(
                cmd,
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                env={**os.environ, "npm_config_update_notifier": "false"},
            )
        except subprocess.TimeoutExpired:
            unavailable(f"`{' '.join(cmd[1:])}` took more than {INSTALL_TIMEOUT}s")
        if done.returncode != 0:
            unavailable(
                f"`npm {' '.join(cmd[1:])}` in {NODE_DIR} failed ({done.returncode}):\n"
                + _tail(done.stderr or done.stdout)
            )
        # The lock file may have been created by `npm install`: stamp what is there now.
        STAMP.write_text(_install_fingerprint(self.version))

    def _build(self) -> None:
        if BUNDLE.exists() and BUNDLE.stat().st_mtime >= _newest_mtime(*BUNDLE_INPUTS):
            return
        done = subprocess.run(
            [self.node, "build.mjs"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        if done.returncode != 0:
            # Not an environment problem: the bundle of the pinned SDK must build.
            raise NodeDriverError("node build.mjs failed:\n" + _tail(done.stderr + done.stdout))

    # -- running drivers ---------------------------------------------------------------

    def _command(self, script: str, args: tuple[str, ...]) -> list[str]:
        return [self.node, "--enable-source-maps", str(NODE_DIR / "drivers" / script), *args]

    def _env(self, timeout: float, env: dict[str, str] | None) -> dict[str, str]:
        # The driver reports (and exits) a little before we would kill it.
        return {
            **os.environ,
            **(env or {}),
            "AUTHDEVICE_DRIVER_TIMEOUT": str(max(5, int(timeout) - 5)),
        }

    def run(
        self,
        script: str,
        *args: str,
        timeout: float = DEFAULT_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run ``drivers/<script>`` to completion and return its JSON result."""
        cmd = self._command(script, args)
        try:
            done = subprocess.run(
                cmd,
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self._env(timeout, env),
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise NodeDriverError(
                f"{script} {args[:1]} timed out after {timeout}s\n{_tail(stderr)}"
            ) from exc
        return parse_result(script, done.returncode, done.stdout, done.stderr)

    def start(
        self,
        script: str,
        *args: str,
        timeout: float = DEFAULT_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> BackgroundRun:
        """Start ``drivers/<script>`` in the background (e.g. a phone polling the server)."""
        workdir = Path(tempfile.mkdtemp(prefix="authdevice-node-"))
        stdout = open(workdir / "stdout", "w+")  # closed by BackgroundRun
        stderr = open(workdir / "stderr", "w+")
        proc = subprocess.Popen(
            self._command(script, args),
            cwd=NODE_DIR,
            stdout=stdout,
            stderr=stderr,
            text=True,
            env=self._env(timeout, env),
        )
        return BackgroundRun(script, proc, stdout, stderr, time.monotonic() + timeout, workdir)


def parse_result(script: str, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise NodeDriverError(
            f"{script} exited {returncode} without a JSON result\n"
            f"stdout:\n{_tail(stdout)}\nstderr:\n{_tail(stderr)}"
        ) from exc
    if returncode != 0 or not result.get("ok"):
        raise NodeDriverError(
            f"{script} failed ({returncode}): {result.get('driverError')}\n"
            f"{result.get('stack') or ''}\nstderr:\n{_tail(stderr)}"
        )
    return result


@dataclass
class BackgroundRun:
    script: str
    proc: subprocess.Popen[str]
    stdout: Any
    stderr: Any
    deadline: float
    workdir: Path

    def wait_for_file(self, path: Path, timeout: float = 30) -> dict[str, Any]:
        """Wait until the driver writes ``path`` (JSON); fail early if it exits first."""
        limit = min(self.deadline, time.monotonic() + timeout)
        while time.monotonic() < limit:
            if path.exists():
                return json.loads(path.read_text())
            if self.proc.poll() is not None:
                result = self.result(timeout=1)
                raise NodeDriverError(
                    f"{self.script} finished before writing {path.name}: {json.dumps(result)[:4000]}"
                )
            time.sleep(0.05)
        self.kill()
        raise NodeDriverError(f"{self.script} did not write {path.name} within {timeout}s")

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        remaining = self.deadline - time.monotonic()
        wait = max(0.1, remaining if timeout is None else min(timeout, remaining))
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired as exc:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.stderr.seek(0)
            stderr = self.stderr.read()
            self.close()
            raise NodeDriverError(
                f"{self.script} still running after {wait:.0f}s\nstderr:\n{_tail(stderr)}"
            ) from exc
        try:
            self.stdout.seek(0)
            self.stderr.seek(0)
            return parse_result(
                self.script, self.proc.returncode, self.stdout.read(), self.stderr.read()
            )
        finally:
            self.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.close()

    def close(self) -> None:
        self.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
