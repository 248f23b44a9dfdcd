"""Folder transport on the local file system (through the reactor's thread pool)."""

from __future__ import annotations

import hashlib

import pytest

from gateway.config import model as m
from gateway.transports import (
    BankUnavailable,
    RemoteRefused,
    TransferFailed,
    make_transport,
)


@pytest.fixture
def folders(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "in").mkdir()
    return tmp_path / "out", tmp_path / "in"


@pytest.fixture
def client(folders, twisted_reactor):
    out, inc = folders
    return make_transport(m.FolderTransport(outgoing=out, incoming=inc), reactor=twisted_reactor.reactor)


def test_round_trip(client, folders, in_reactor, tmp_path):
    out, inc = folders
    body = b"<Document>pain.001 MSG1</Document>"
    r = in_reactor(client.deliver, "MSG1.xml", body, b"SM2-SIG", signature_ext="sm2")
    assert not r.already_there and r.sha256 == hashlib.sha256(body).hexdigest() and r.signature_name == "MSG1.xml.sm2"
    assert sorted(p.name for p in out.iterdir()) == ["MSG1.xml", "MSG1.xml.sm2"]  # no temporary left
    assert (out / "MSG1.xml").read_bytes() == body and (out / "MSG1.xml.sm2").read_bytes() == b"SM2-SIG"
    assert in_reactor(client.deliver, "MSG1.xml", body, b"SM2-SIG", signature_ext="sm2").already_there

    src = tmp_path / "big.txt"
    src.write_bytes(b"x" * 300_000)
    assert in_reactor(client.deliver, "MSG2.txt", src).size == 300_000

    (inc / "R1.xml").write_bytes(b"<pain.002/>")
    (inc / "R1.xml.sm2").write_bytes(b"bank-sig")
    (inc / "R2.txt").write_bytes(b"ok")
    (inc / ".R3.txt.part").write_bytes(b"being copied")
    (inc / "subdir").mkdir()
    assert in_reactor(client.list_reports) == ["R1.xml", "R2.txt"]
    assert in_reactor(client.fetch_report, "R1.xml") == (b"<pain.002/>", b"bank-sig")
    assert in_reactor(client.fetch_report, "R2.txt") == (b"ok", None)
    in_reactor(client.ack_report, "R1.xml")
    in_reactor(client.ack_report, "R1.xml")  # again: harmless
    assert in_reactor(client.list_reports) == ["R2.txt"]
    assert sorted(p.name for p in (inc / "archive").iterdir()) == ["R1.xml", "R1.xml.sm2"]
    in_reactor(client.close)


def test_other_bytes_under_an_existing_name_are_refused(client, folders, in_reactor):
    out, _ = folders
    (out / "MSG3.xml").write_bytes(b"what the bank already has")
    with pytest.raises(RemoteRefused):
        in_reactor(client.deliver, "MSG3.xml", b"something else")
    assert (out / "MSG3.xml").read_bytes() == b"what the bank already has"


def test_missing_folder_is_bank_unavailable(client, folders, in_reactor):
    out, inc = folders
    out.rmdir()
    with pytest.raises(BankUnavailable):
        in_reactor(client.deliver, "MSG4.xml", b"x")
    inc.rmdir()
    with pytest.raises(BankUnavailable):
        in_reactor(client.list_reports)


def test_unknown_report_and_unsafe_names(client, in_reactor):
    with pytest.raises(TransferFailed) as e:
        in_reactor(client.fetch_report, "NOPE.xml")
    assert not e.value.retryable
    for bad in ("../etc/passwd", ".hidden", "", "a/b"):
        with pytest.raises(ValueError):
            in_reactor(client.deliver, bad, b"x")
