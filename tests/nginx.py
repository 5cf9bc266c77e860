"""A real nginx for tests: a generated config in a temporary directory, one
``server`` block per upstream (or the documented fleet's configuration),
every file nginx writes under that directory, listening only on 127.0.0.1,
and always stopped.

nginx runs in the foreground without a master process (``daemon off;
master_process off;``): the one process is the child the test started, so
``stop`` ends it, and it never switches to another user, so the same config
works as root (whose workers would otherwise run as ``nobody`` and could not
enter a private temporary directory) and as an ordinary user.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from .servers import ROOT, free_port, stop, wait_for_port

#: Where Debian's ``nginx`` package installs the binary.
NGINX = Path("/usr/sbin/nginx")

#: The headers of the README's "Behind nginx" section. ``$http_host`` is the
#: client's own ``Host`` header, port included; ``$host`` drops the port.
PROXY_HEADERS = {
    "Host": "$http_host",
    "X-Forwarded-For": "$proxy_add_x_forwarded_for",
    "X-Forwarded-Proto": "$scheme",
}


@dataclasses.dataclass(frozen=True)
class Site:
    """One ``server`` block: a port of its own, proxying everything to
    ``upstream`` (a port on 127.0.0.1) with ``headers`` set.
    """

    upstream: int
    headers: dict[str, str] = dataclasses.field(
        default_factory=lambda: dict(PROXY_HEADERS)
    )


@dataclasses.dataclass
class Nginx:
    ports: list[int]  # one per site, in order
    process: subprocess.Popen[bytes]
    error_log: Path
    access_log: Path

    def log_text(self) -> str:
        return self.error_log.read_text(errors="replace")


def binary() -> Path:
    """The nginx binary; the test fails (it does not skip) without one."""
    if NGINX.is_file():
        return NGINX
    found = shutil.which("nginx")
    if found is None:
        pytest.fail(
            f"nginx is not installed (no {NGINX}, none on PATH): "
            "install Debian's package: apt-get install nginx"
        )
    return Path(found)


def config(
    directory: Path, sites: Sequence[Site], ports: Sequence[int], http: str = ""
) -> str:
    """An nginx.conf that reads and writes nothing outside ``directory``;
    ``http`` is added verbatim inside ``http {}``.
    """
    servers = [http]
    for site, port in zip(sites, ports, strict=True):
        headers = "".join(
            f"            proxy_set_header {name} {value};\n"
            for name, value in site.headers.items()
        )
        servers.append(
            "    server {\n"
            f"        listen 127.0.0.1:{port};\n"
            "        location / {\n"
            f"            proxy_pass http://127.0.0.1:{site.upstream};\n"
            f"{headers}"
            "        }\n"
            "    }\n"
        )
    return (
        "daemon off;\n"
        "master_process off;\n"
        f"pid {directory}/nginx.pid;\n"
        f"error_log {directory}/error.log info;\n"
        "events {\n"
        "    worker_connections 256;\n"
        "}\n"
        "http {\n"
        f"    access_log {directory}/access.log;\n"
        f"    client_body_temp_path {directory}/client_body;\n"
        f"    proxy_temp_path {directory}/proxy;\n"
        f"    fastcgi_temp_path {directory}/fastcgi;\n"
        f"    uwsgi_temp_path {directory}/uwsgi;\n"
        f"    scgi_temp_path {directory}/scgi;\n"
        f"{''.join(servers)}"
        "}\n"
    )


def fleet_config(port_a: int, port_b: int, listen: int) -> str:
    """The documented example (``examples/nginx-fleet.conf``), with this
    test's ports: pass it as ``http`` and ``listen`` to :func:`nginx`.
    """
    text = (ROOT / "examples" / "nginx-fleet.conf").read_text()
    for old, new in (
        ("127.0.0.1:8001", f"127.0.0.1:{port_a}"),
        ("127.0.0.1:8002", f"127.0.0.1:{port_b}"),
        ("127.0.0.1:8080", f"127.0.0.1:{listen}"),
    ):
        assert old in text
        text = text.replace(old, new)
    return text


@contextlib.contextmanager
def nginx(
    tmp_path: Path,
    sites: Sequence[Site],
    *,
    name: str = "nginx",
    http: str = "",
    listen: Sequence[int] = (),
) -> Iterator[Nginx]:
    """A real nginx in front of ``sites``, each on a free loopback port, plus
    whatever ``http`` configures (listening on the ports in ``listen``).
    """
    executable = binary()
    directory = tmp_path / name
    directory.mkdir()
    ports = [free_port() for _ in sites]
    conf = directory / "nginx.conf"
    conf.write_text(config(directory, sites, ports, http))
    ports += list(listen)
    error_log = directory / "error.log"
    output = directory / "output.log"
    with output.open("wb") as output_file:
        process = subprocess.Popen(
            # -e: the log for messages before the config is read (nginx >= 1.19.5).
            [executable, "-p", str(directory), "-c", str(conf), "-e", str(error_log)],
            stdin=subprocess.DEVNULL,
            stdout=output_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for port in ports:
            try:
                wait_for_port(port, timeout=10, process=process)
            except (RuntimeError, TimeoutError) as exc:
                logs = output.read_text(errors="replace")
                if error_log.exists():
                    logs += error_log.read_text(errors="replace")
                raise RuntimeError(f"{exc}; nginx said:\n{logs}") from None
        yield Nginx(
            ports=ports,
            process=process,
            error_log=error_log,
            access_log=directory / "access.log",
        )
    finally:
        stop(process)
