"""A real ``redis-server`` (Debian's package) on a free loopback port, always
stopped; and a WSGI app for gunicorn that wraps itself with a Redis flag.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import typing as t
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from .servers import free_port, stop, wait_for_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclasses.dataclass
class RedisServer:
    directory: Path
    port: int
    password: str | None = None
    #: Extra ``redis-server`` arguments (e.g. ``--user`` ACL rules).
    extra: tuple[str, ...] = ()
    #: A directory with ``ca.crt``, ``server.crt`` and ``server.key``: the
    #: server then speaks TLS only (``rediss://``).
    tls: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    def start(self) -> None:
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            ports = [
                *("--port", "0", "--tls-port", str(self.port)),
                *("--tls-cert-file", str(self.tls / "server.crt")),
                *("--tls-key-file", str(self.tls / "server.key")),
                *("--tls-ca-cert-file", str(self.tls / "ca.crt")),
                *("--tls-auth-clients", "no"),
            ]
        command = [
            REDIS_SERVER,
            *ports,
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        if self.password is not None:
            command += ["--requirepass", self.password]
        command += self.extra
        log = (self.directory / "redis.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_port(self.port, process=self.process, timeout=10)

    def stop(self) -> None:
        """Stop it (its data goes: no persistence)."""
        if self.process is not None:
            self.resume()
            stop(self.process)
            self.process = None

    def pause(self) -> None:
        """SIGSTOP: connections are still accepted, nothing is answered."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused and self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False

    def url(
        self, key: str = "ipdebug:test", *, user: str = "", password: str | None = None
    ) -> str:
        password = self.password if password is None else password
        userinfo = ""
        if password:
            userinfo = f"{user}:{urllib.parse.quote(password, safe='')}@"
        elif user:
            userinfo = f"{user}@"
        if self.tls is None:
            return f"redis://{userinfo}127.0.0.1:{self.port}/0?key={key}"
        ca = urllib.parse.quote(str(self.tls / "ca.crt"), safe="/")
        return f"rediss://{userinfo}127.0.0.1:{self.port}/0?key={key}&ssl_ca_certs={ca}"

    def client(self) -> t.Any:
        """A plain redis client (as the default user) for inspecting keys."""
        import redis

        tls: dict[str, t.Any] = {}
        if self.tls is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(self.tls / "ca.crt")}
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            decode_responses=True,
            protocol=2,
            **tls,
        )


def make_certificates(directory: Path) -> Path:
    """A test CA and a certificate for 127.0.0.1 signed by it (openssl)."""
    directory.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(
            ["openssl", *args], cwd=directory, check=True, capture_output=True
        )

    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req",
        "-x509",
        *key,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=ipdebug test CA",
    )
    openssl(
        "req",
        *key,
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext",
    )  # fmt: skip
    return directory


@contextlib.contextmanager
def redis_server(
    tmp_path: Path,
    *,
    password: str | None = None,
    extra: tuple[str, ...] = (),
    tls: bool = False,
) -> Iterator[RedisServer]:
    import pytest  # here: gunicorn workers import this module for wrapped_app

    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail(
            f"{REDIS_SERVER} not found: install Debian's redis-server "
            "(apt-get install redis-server)"
        )
    directory = tmp_path / f"redis-{len(list(tmp_path.glob('redis-*')))}"
    directory.mkdir()
    certificates = make_certificates(directory / "tls") if tls else None
    server = RedisServer(directory, free_port(), password, extra, certificates)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wrapped_app() -> t.Any:
    """gunicorn factory (``tests.redis_server:wrapped_app()``): the plain app
    wrapped here, from ``IPDEBUG_*`` variables, without the relay (its
    sockets would go to the user's home directory). With ``--preload`` this
    runs in the master, before the fork; ``IPDEBUG_TEST_POLL=1`` also makes
    the master read the flag, so its reader thread and connection exist
    when the workers are forked.
    """
    from ipdebug import IPDebugMiddleware

    from .apps.plain import app

    middleware = IPDebugMiddleware(app, relay=False)
    if os.environ.get("IPDEBUG_TEST_POLL") == "1":
        middleware.switch.poll_now()
    return middleware
