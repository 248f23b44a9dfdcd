"""A real OpenSSH server for tests: ``start_sshd`` on a free loopback port with a temporary config.

Used by ``tests/transports/conftest.py`` (fixture ``sshd``); a plain module so other test
directories can import it too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh_keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, capture_output=True)
    return path


@dataclass
class Sshd:
    port: int
    root: Path  # contains inbox/ and outbox/
    host_pub: Path
    client_key: Path
    log: Path
    proc: subprocess.Popen

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _sshd_config(d: Path, port: int, host_key: Path, authorized: Path) -> Path:
    cfg = d / "sshd_config"
    cfg.write_text(f"""\
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {d / 'sshd.pid'}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
LogLevel VERBOSE
Subsystem sftp internal-sftp
""")
    return cfg


def start_sshd(d: Path, host_key: Path, authorized_pubs: list[Path]) -> Sshd:
    """Start a real OpenSSH server serving ``d/root`` on a free loopback port."""
    root = d / "root"
    (root / "inbox").mkdir(parents=True, exist_ok=True)
    (root / "outbox").mkdir(parents=True, exist_ok=True)
    authorized = d / "authorized_keys"
    authorized.write_text("".join(p.read_text() for p in authorized_pubs))
    os.makedirs("/run/sshd", exist_ok=True)  # privilege-separation directory sshd insists on
    for _attempt in range(5):
        port = free_port()
        cfg = _sshd_config(d, port, host_key, authorized)
        log = d / f"sshd-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break  # e.g. the port was taken meanwhile: try another
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return Sshd(port, root, Path(f"{host_key}.pub"), Path(), log, proc)
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raise RuntimeError(f"sshd did not start; last log:\n{log.read_text(errors='replace')}")
