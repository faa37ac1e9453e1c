"""A real PgBouncer in transaction mode in front of the test PostgreSQL.

Debian's ``pgbouncer`` is installed by the test setup when missing (apt-get); under CI a
failure to install fails the run, locally it skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import pytest

from tests.support.services import in_ci

_CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = {logfile}
"""


def pgbouncer_binary() -> str:
    """The path of Debian's pgbouncer, installing the package if it is missing."""
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "pgbouncer"]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if done.returncode != 0 or not os.path.exists(found):
        message = f"cannot install pgbouncer: {done.stderr.strip()[-500:]}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


class PgBouncer:
    """Runs pgbouncer on ``port`` in front of PostgreSQL at ``host:target_port``."""

    def __init__(self, port: int, host: str, target_port: int) -> None:
        self.port = port
        self.workdir = Path(tempfile.mkdtemp(prefix="pgoutbox-pgbouncer-"))
        self.workdir.chmod(0o755)  # pgbouncer drops to the postgres user when run as root
        (self.workdir / "users.txt").write_text('"postgres" ""\n')
        self.config = self.workdir / "pgbouncer.ini"
        self.config.write_text(
            _CONFIG.format(
                host=host,
                port=target_port,
                listen=port,
                auth_file=self.workdir / "users.txt",
                logfile=self.workdir / "pgbouncer.log",
            )
        )
        for path in self.workdir.iterdir():
            path.chmod(0o644)
        log = self.workdir / "pgbouncer.log"
        log.touch()
        log.chmod(0o666)  # written by the postgres user
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        command = [pgbouncer_binary(), str(self.config)]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "postgres"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.workdir / "pgbouncer.log").read_text()
                raise RuntimeError(f"pgbouncer exited: {log[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen on {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)
