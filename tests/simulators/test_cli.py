"""``ykt simulate-bank`` as an operator runs it: its own process, ephemeral ports it prints, answers on both,
stops cleanly on SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

from simulators.testing import reactor_thread

from sim_helpers import https, sftp_session

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_bank_runs_on_ephemeral_ports_answers_and_stops_on_sigterm(sim_keys, tmp_path):
    cmd = [sys.executable, "-m", "gateway.cli", "simulate-bank", "--bank", "psbc-xs", "--scenario", "default",
           "--seed", "7", "--sftp-port", "0", "--https-port", "0", "--root", str(tmp_path / "bank"),
           "--keys-dir", str(sim_keys.keys_dir)]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    guard = threading.Timer(60, p.kill)  # never hang the suite on a bank that does not come up
    guard.start()
    try:
        banner = [p.stdout.readline() for _ in range(5)]
        text = "".join(banner)
        assert "seed=7" in banner[0] and "default.toml" in banner[0], text + p.stderr.read()
        user, sftp_port = re.search(r"sftp://([\w-]+)@127\.0\.0\.1:(\d+)/", text).groups()
        https_url = re.search(r"(https://127\.0\.0\.1:\d+/\S*)", text).group(1)
        assert int(sftp_port) not in (0, 2232) and ":8443/" not in https_url  # ephemeral, not the configured ports
        with socket.create_connection(("127.0.0.1", int(sftp_port)), timeout=10) as s:
            assert s.recv(64).startswith(b"SSH-2.0-")
        rb = SimpleNamespace(bank_keys=sim_keys.bank("psbc-xs"), username=user, sftp_port=int(sftp_port),
                             _rt=reactor_thread(), keys=sim_keys, https_url=https_url)
        client, close = sftp_session(rb, key=sim_keys.gateway_ssh_key)
        names = rb._rt.call(lambda: client.openDirectory(b"/").addCallback(lambda d: d.read()))
        close()
        assert sorted(n[0] for n in names) == [b"inbox", b"outbox"]
        assert https(rb, "GET", "/health")[0] == 200
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0, p.stderr.read()
        for port in (int(sftp_port), int(https_url.split(":")[2].split("/")[0])):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                raise AssertionError(f"port {port} still open after SIGTERM")
            except ConnectionRefusedError:
                pass
    finally:
        guard.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
