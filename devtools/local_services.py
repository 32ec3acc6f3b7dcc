"""Throwaway PostgreSQL and Redis servers on loopback, for the demo and the test suite.

Both run from Debian's binaries in a private directory on a free port. PostgreSQL refuses to run as
root, so when we are root the cluster is owned by and run as the ``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import uvicorn


class LocalServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _postgres_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), reverse=True)
    if not candidates:
        raise LocalServiceError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return Path(candidates[0]).parent


def _wait_for_port(port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise LocalServiceError(f"{what} did not start listening on 127.0.0.1:{port}")


class LocalPostgres:
    """A private PostgreSQL cluster. ``url`` connects as the superuser ``gateway`` (no password)."""

    def __init__(self, base_dir: Path | None = None) -> None:
        self._owned_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="ug-pg-"))
        self.data_dir = self.base_dir / "data"
        self.port = free_port()
        self._bin = _postgres_bin_dir()
        self._run_as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://gateway@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://gateway@127.0.0.1:{self.port}/{database}"

    def _command(self, *args: str) -> list[str]:
        if self._run_as_postgres:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def start(self) -> LocalPostgres:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.base_dir, user.pw_uid, user.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                self._command(
                    str(self._bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "gateway",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ),
                check=True,
                capture_output=True,
            )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='{self.base_dir}'"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
            " -c shared_buffers=256MB -c log_min_messages=warning"
        )
        subprocess.run(
            self._command(
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.base_dir / "log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        _wait_for_port(self.port, "PostgreSQL")
        return self

    def halt(self) -> None:
        """Stop the server at once (``-m immediate``, as if it crashed), keeping its data: :meth:`start`
        brings it back on the same port with the same databases."""
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            subprocess.run(
                self._command(str(self._bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"),
                check=True,
                capture_output=True,
            )

    def stop(self) -> None:
        self.halt()
        if self._owned_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


class LocalRedis:
    """A private, non-persistent Redis on loopback."""

    def __init__(self) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise LocalServiceError("redis-server not found (apt-get install redis-server)")
        self._binary = binary
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="ug-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedis:
        """Start the server; after :meth:`kill`, again on the same port (empty: nothing is persisted)."""
        self._dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, "Redis")
        return self

    def kill(self) -> None:
        """Kill the server (SIGKILL: no goodbye to its clients); :meth:`start` brings it back."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[LocalPostgres]:
    server = LocalPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_redis() -> Iterator[LocalRedis]:
    server = LocalRedis().start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def serving(
    app: Any,
    *,
    lifespan: Literal["on", "off"] = "off",
    on_stop: Callable[[], None] | None = None,
    date_header: bool = True,
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a background thread; yields its base URL.

    On exit ``on_stop`` runs first (to release requests the app holds open), then the server stops.
    ``date_header=False`` leaves the ``Date`` header to the app (uvicorn would add a second one).
    """
    for _attempt in range(3):
        port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan=lifespan,
            date_header=date_header,
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"asgi-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if server.started:
            break
        server.should_exit = True
        thread.join(5)
    else:
        raise RuntimeError("the server did not start on loopback")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if on_stop is not None:
            on_stop()
        server.should_exit = True
        thread.join(15)
