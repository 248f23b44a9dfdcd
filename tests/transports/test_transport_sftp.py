"""SFTP transport against a real OpenSSH server on a loopback port (see conftest ``sshd``)."""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from sshd_server import free_port

from gateway.config import model as m
from gateway.transports import (
    AuthenticationFailed,
    BankUnavailable,
    HostKeyMismatch,
    RemoteRefused,
    TransferFailed,
    make_transport,
)
from gateway.transports.sftp import SftpClient


def client_for(sshd, reactor, **kw) -> SftpClient:
    opts = {"reactor": reactor, "host": "127.0.0.1", "port": sshd.port, "username": getpass.getuser(),
            "inbox": str(sshd.inbox), "outbox": str(sshd.outbox), "host_key": sshd.host_pub,
            "client_key": sshd.client_key, "bank": "test-bank"}
    opts.update(kw)
    return SftpClient(**opts)


@pytest.fixture
def client(sshd, twisted_reactor):
    c = client_for(sshd, twisted_reactor.reactor)
    yield c
    twisted_reactor.call(c.close)


def test_deliver_then_deliver_again_is_idempotent(sshd, twisted_reactor, in_reactor):
    """Built from the config dataclass through make_transport, as the dispatcher does."""
    cfg = m.SftpTransport(host="127.0.0.1", port=sshd.port, username=getpass.getuser(),
                          inbox=str(sshd.inbox), outbox=str(sshd.outbox),
                          host_key=sshd.host_pub, client_key=sshd.client_key)
    t = make_transport(cfg, reactor=twisted_reactor.reactor, keys_dir=None)
    try:
        body = b"<Document>pain.001 MSG1</Document>"
        first = in_reactor(t.deliver, "MSG1.xml", body, b"CMS-SIG", signature_ext="p7s")
        assert not first.already_there
        assert first.size == len(body) and first.sha256 == hashlib.sha256(body).hexdigest()
        assert first.signature_name == "MSG1.xml.p7s"
        assert (sshd.inbox / "MSG1.xml").read_bytes() == body
        assert (sshd.inbox / "MSG1.xml.p7s").read_bytes() == b"CMS-SIG"
        assert sorted(p.name for p in sshd.inbox.iterdir()) == ["MSG1.xml", "MSG1.xml.p7s"]

        before = (sshd.inbox / "MSG1.xml").stat().st_mtime_ns
        again = in_reactor(t.deliver, "MSG1.xml", body, b"CMS-SIG", signature_ext="p7s")
        assert again.already_there and again.size == len(body)
        assert (sshd.inbox / "MSG1.xml").stat().st_mtime_ns == before  # not written again
    finally:
        in_reactor(t.close)


def test_deliver_from_a_path_without_signature(client, sshd, in_reactor, tmp_path):
    src = tmp_path / "MSG2.txt"
    src.write_bytes("汇总|2|200.00\r\n".encode("gbk"))
    r = in_reactor(client.deliver, "MSG2.txt", src)
    assert r.signature_name is None and (sshd.inbox / "MSG2.txt").read_bytes() == src.read_bytes()


def test_upload_goes_to_a_temporary_name_then_is_renamed(client, sshd, in_reactor, tmp_path):
    """Watch the inbox while a 16 MB file travels: the final name only ever shows the whole file,
    the data is written under ``.<name>.part``, and the signature is there before the data."""
    size = 16 * 1024 * 1024
    src = tmp_path / "BIG1.xml"
    with open(src, "wb") as f:
        f.writelines(os.urandom(1024 * 1024) for _ in range(size // (1024 * 1024)))
    seen_part, final_sizes, sig_missing_when_part = 0, set(), 0
    done = threading.Event()

    def watch():
        nonlocal seen_part, sig_missing_when_part
        while not done.is_set():
            names = set(os.listdir(sshd.inbox))
            if ".BIG1.xml.part" in names:
                seen_part += 1
                sig_missing_when_part += "BIG1.xml.p7s" not in names
            if "BIG1.xml" in names:
                final_sizes.add((sshd.inbox / "BIG1.xml").stat().st_size)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        r = in_reactor(client.deliver, "BIG1.xml", src, b"SIG", signature_ext="p7s")
    finally:
        done.set()
        watcher.join()
    assert seen_part > 0, "the data never appeared under its temporary name"
    assert sig_missing_when_part == 0, "the signature must be uploaded before the data"
    assert final_sizes <= {size}, f"the final name showed a partial file: {final_sizes}"
    assert not (sshd.inbox / ".BIG1.xml.part").exists()
    assert hashlib.sha256((sshd.inbox / "BIG1.xml").read_bytes()).hexdigest() == r.sha256


def test_a_leftover_part_file_from_a_crash_is_overwritten(client, sshd, in_reactor):
    (sshd.inbox / ".MSG3.xml.part").write_bytes(b"half a file from a crashed attempt, longer than the real one")
    r = in_reactor(client.deliver, "MSG3.xml", b"whole")
    assert not r.already_there and (sshd.inbox / "MSG3.xml").read_bytes() == b"whole"
    assert not (sshd.inbox / ".MSG3.xml.part").exists()


def test_a_different_file_under_the_same_name_is_refused_not_overwritten(client, sshd, in_reactor):
    (sshd.inbox / "MSG4.xml").write_bytes(b"the bank already has this one")
    with pytest.raises(RemoteRefused) as e:
        in_reactor(client.deliver, "MSG4.xml", b"different bytes")
    assert not e.value.retryable and "同名" in e.value.zh
    assert (sshd.inbox / "MSG4.xml").read_bytes() == b"the bank already has this one"


def test_reports_list_fetch_ack(client, sshd, in_reactor):
    out = sshd.outbox
    (out / "R1.xml").write_bytes(b"<pain.002/>")
    (out / "R1.xml.p7s").write_bytes(b"bank-sig")
    (out / "R2.txt").write_bytes("成功|1\r\n".encode("gbk"))
    (out / ".R3.xml.part").write_bytes(b"being written by the bank")
    (out / "some-dir").mkdir()
    assert in_reactor(client.list_reports) == ["R1.xml", "R2.txt"]
    assert in_reactor(client.fetch_report, "R1.xml") == (b"<pain.002/>", b"bank-sig")
    assert in_reactor(client.fetch_report, "R2.txt") == ("成功|1\r\n".encode("gbk"), None)

    in_reactor(client.ack_report, "R1.xml")
    assert (out / "archive" / "R1.xml").read_bytes() == b"<pain.002/>"
    assert (out / "archive" / "R1.xml.p7s").read_bytes() == b"bank-sig"
    assert in_reactor(client.list_reports) == ["R2.txt"]
    in_reactor(client.ack_report, "R1.xml")  # again: harmless
    in_reactor(client.ack_report, "R2.txt")
    assert in_reactor(client.list_reports) == []
    assert sorted(p.name for p in (out / "archive").iterdir()) == ["R1.xml", "R1.xml.p7s", "R2.txt"]


def test_wrong_pinned_host_key_is_refused_loudly(sshd, ssh_keys, twisted_reactor, in_reactor):
    c = client_for(sshd, twisted_reactor.reactor, host_key=Path(f"{ssh_keys['other_host']}.pub"))
    with pytest.raises(HostKeyMismatch) as e:
        in_reactor(c.deliver, "MSG5.xml", b"secret roster")
    assert not e.value.retryable and "中间人" in e.value.zh and "SHA256:" in str(e.value)
    assert list(sshd.inbox.iterdir()) == []
    in_reactor(c.close)


def test_unknown_client_key_fails_authentication(sshd, ssh_keys, twisted_reactor, in_reactor):
    c = client_for(sshd, twisted_reactor.reactor, client_key=ssh_keys["stranger"])
    with pytest.raises(AuthenticationFailed) as e:
        in_reactor(c.list_reports)
    assert not e.value.retryable and e.value.zh
    in_reactor(c.close)


def test_refused_port_means_bank_unavailable(ssh_keys, twisted_reactor, in_reactor):
    c = SftpClient(reactor=twisted_reactor.reactor, host="127.0.0.1", port=free_port(), username="x",
                   inbox="/inbox", outbox="/outbox", host_key=Path(f"{ssh_keys['host']}.pub"),
                   client_key=ssh_keys["client"])
    with pytest.raises(BankUnavailable) as e:
        in_reactor(c.deliver, "MSG6.xml", b"x")
    assert e.value.retryable, e.value


def test_a_server_that_never_speaks_times_out(ssh_keys, twisted_reactor, in_reactor):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts; nobody ever sends an SSH banner
        c = SftpClient(reactor=twisted_reactor.reactor, host="127.0.0.1", port=silent.getsockname()[1],
                       username="x", inbox="/inbox", outbox="/outbox",
                       host_key=Path(f"{ssh_keys['host']}.pub"), client_key=ssh_keys["client"],
                       setup_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(BankUnavailable) as e:
            in_reactor(c.list_reports)
        assert time.monotonic() - started < 5 and "0.5s" in str(e.value)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_50_mb_file_streams_with_flat_memory(client, sshd, in_reactor, tmp_path):
    size = 50 * 1024 * 1024
    src = tmp_path / "HUGE1.xml"
    block = os.urandom(1024 * 1024)
    with open(src, "wb") as f:
        f.writelines(block for _ in range(size // len(block)))
    in_reactor(client.list_reports)  # connect first: session setup is not what is measured
    baseline, peak, done = _rss(), 0, threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        r = in_reactor(client.deliver, "HUGE1.xml", src, timeout=120)
    finally:
        done.set()
        sampler.join()
    assert r.size == size and (sshd.inbox / "HUGE1.xml").stat().st_size == size
    growth = peak - baseline
    assert growth < 30 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MB"


def _kill_sessions(sshd) -> None:
    """SIGKILL the per-connection sshd processes (children of the listener this test started)."""
    children = Path(f"/proc/{sshd.proc.pid}/task/{sshd.proc.pid}/children").read_text().split()
    assert children, "no session process to kill"
    for pid in children:
        os.kill(int(pid), 9)


def test_a_connection_killed_mid_upload_fails_retryably_and_the_retry_completes(client, sshd, in_reactor, tmp_path):
    size = 40 * 1024 * 1024
    src = tmp_path / "CUT1.xml"
    block = os.urandom(1024 * 1024)
    with open(src, "wb") as f:
        f.writelines(block for _ in range(size // len(block)))
    in_reactor(client.list_reports)  # connected

    def kill_when_part_grows():
        part = sshd.inbox / ".CUT1.xml.part"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if part.exists() and part.stat().st_size > 1024 * 1024:
                _kill_sessions(sshd)
                return
            time.sleep(0.001)

    killer = threading.Thread(target=kill_when_part_grows)
    killer.start()
    with pytest.raises((TransferFailed, BankUnavailable)) as e:
        in_reactor(client.deliver, "CUT1.xml", src)
    killer.join()
    assert e.value.retryable, e.value
    assert not (sshd.inbox / "CUT1.xml").exists(), "a cut upload must never show under the final name"

    r = in_reactor(client.deliver, "CUT1.xml", src)  # a new connection; the stale .part is overwritten
    assert not r.already_there and (sshd.inbox / "CUT1.xml").stat().st_size == size
    assert not (sshd.inbox / ".CUT1.xml.part").exists()
    assert in_reactor(client.deliver, "CUT1.xml", src).already_there
