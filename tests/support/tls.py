"""STOMP over TLS for tests: a self-signed certificate and stunnel in front of the broker.

stunnel comes from Debian (``apt-get install -y stunnel4``); :func:`ensure_stunnel` installs it
when it is missing and the machine lets us (root), the way CI sets it up.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

STUNNEL_INSTALL = "apt-get install -y stunnel4"


def ensure_stunnel() -> str:
    """Return the stunnel executable, installing Debian's ``stunnel4`` if needed."""
    found = shutil.which("stunnel") or shutil.which("stunnel4")
    if found:
        return found
    install = ["apt-get", "install", "-y", "-q", "stunnel4"]
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which("stunnel") or shutil.which("stunnel4")
    if not found:
        raise RuntimeError(f"stunnel is not installed; run: {STUNNEL_INSTALL}")
    return found


def make_certificate(directory: Path, name: str, host: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (its own CA); return ``(cert, key)`` paths."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName=DNS:{host}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TlsTerminator:
    """stunnel accepting TLS on ``127.0.0.1:port`` and forwarding plain TCP to the broker."""

    port: int
    cert: Path
    log: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, directory: Path, target: tuple[str, int]) -> TlsTerminator:
        stunnel = ensure_stunnel()
        cert, key = make_certificate(directory, "broker")
        port = free_port()
        config = directory / "stunnel.conf"
        log = directory / "stunnel.log"
        config.write_text(
            "foreground = yes\n"
            "pid =\n"
            f"output = {log}\n"
            "debug = 5\n"
            "[stomp]\n"
            f"accept = 127.0.0.1:{port}\n"
            f"connect = {target[0]}:{target[1]}\n"
            f"cert = {cert}\n"
            f"key = {key}\n"
        )
        process = subprocess.Popen(
            [stunnel, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        terminator = cls(port, cert, log, process)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return terminator
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    terminator.stop()
                    raise RuntimeError(f"stunnel did not start: {log.read_text()}") from None
                time.sleep(0.05)

    def accepted_connections(self) -> int:
        return self.log.read_text(errors="replace").count("accepted connection")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)
