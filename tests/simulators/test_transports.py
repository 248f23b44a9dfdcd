"""The simulated bank on the wire: an outage of one transport only, SFTP password login, a replayed MsgId
over SFTP refused like over HTTPS, and the upload log that witnesses every completed upload."""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
from twisted.conch.ssh.filetransfer import SFTPError

from formats.iso20022.pain002 import read_pain002
from formats.model import TxStatus
from simulators.bank import CST, Upload
from simulators.testing import payments, write_instruction

from sim_helpers import SftpLoginFailed, accept_all, https, put_file, reports, sftp_session, sftp_upload

WINDOW = {"from": dt.datetime(2026, 11, 2, 11, 0), "to": dt.datetime(2026, 11, 2, 12, 0)}


def _sftp_up(rb) -> bool:
    try:
        socket.create_connection(("127.0.0.1", rb.sftp_port), timeout=5).close()
        return True
    except ConnectionRefusedError:
        return False


@pytest.mark.parametrize("down, sftp_up, https_status", [("sftp", False, 200), ("https", True, 503)])
def test_outage_of_one_transport_leaves_the_other_working(bank, down, sftp_up, https_status):
    rb = bank("psbc-xs", scenario=accept_all(outage=[{"transport": down, **WINDOW}]))
    assert (_sftp_up(rb), https(rb, "GET", "/health")[0]) == (True, 200)
    rb.advance_to(dt.datetime(2026, 11, 2, 11, 30, tzinfo=CST))
    assert (_sftp_up(rb), https(rb, "GET", "/health")[0]) == (sftp_up, https_status)
    rb.advance_to(dt.datetime(2026, 11, 2, 12, 0, 1, tzinfo=CST))
    assert (_sftp_up(rb), https(rb, "GET", "/health")[0]) == (True, 200)


def test_sftp_password_login_accepted_with_the_right_password_refused_with_a_wrong_one(bank):
    rb = bank("psbc-xs")
    client, close = sftp_session(rb, password=rb.password)
    try:
        names = rb._rt.call(lambda: client.openDirectory(b"/").addCallback(lambda d: d.read()))
        assert sorted(n[0] for n in names) == [b"inbox", b"outbox"]
    finally:
        close()
    with pytest.raises(SftpLoginFailed):
        sftp_session(rb, password=rb.password + "x")
    with pytest.raises(SftpLoginFailed):
        sftp_session(rb, password="")


@pytest.mark.parametrize("bank_id", ["psbc-xs", "cqrcb-fj"])
def test_replayed_msgid_over_sftp_fails_the_rename_and_is_refused_like_over_https(bank, tmp_path, bank_id):
    rb = bank(bank_id, scenario=accept_all())
    k = rb.keys
    f = write_instruction(rb.bank, tmp_path / "a", list(payments(3)), msg_id="YKT20261102000801",
                          key=k.gateway_sign_key, cert=k.gateway_sign_cert)
    g = write_instruction(rb.bank, tmp_path / "b", list(payments(4)), msg_id="YKT20261102000801",
                          key=k.gateway_sign_key, cert=k.gateway_sign_cert)
    client, close = sftp_session(rb, key=k.gateway_ssh_key)
    try:
        sftp_upload(rb, client, f)
        rb.wait()
        before = set(reports(rb))
        sftp_upload(rb, client, f)  # the same bytes again: the rename succeeds, nothing happens
        with pytest.raises(SFTPError) as refused:
            sftp_upload(rb, client, g)
    finally:
        close()
    assert "refused: DU01" in refused.value.message
    assert json.loads(rb.core.receipt_json(f.name))["status"] == "accepted"  # the first file's receipt stands
    new = set(reports(rb)) - before
    assert len(new) == 1  # the refusal report, in the bank's format (its content: see test_refusals.py)
    if bank_id == "psbc-xs":
        (name,) = new
        r = read_pain002(rb.core.report_path(name).read_bytes(), source=name)
        assert (r.header.group_status, r.header.group_reason_code) == (TxStatus.REJECTED, "DU01")
    assert rb.core.ledger.credited_count == 3
    assert [(u.name, u.outcome, u.reason_code) for u in rb.core.uploads] == [
        (f.name, "accepted", None), (f.name, "repeat", None), (g.name, "refused", "DU01")]


def test_upload_log_records_every_completed_upload_and_survives_a_restart(bank, tmp_path):
    """The witness of "delivered exactly once": one line per completed upload, repeats included, in
    ``state/uploads.jsonl`` beside the ledger, read back when the bank starts again on its directory."""
    root = tmp_path / "icbc"
    rb = bank("icbc-cq", scenario=accept_all(), root=root)
    k = rb.keys
    f = write_instruction(rb.bank, tmp_path / "a", list(payments(2)), msg_id="YKT20261102000901",
                          key=k.gateway_sign_key, cert=k.gateway_sign_cert)
    bad = write_instruction(rb.bank, tmp_path / "b", list(payments(2)), msg_id="YKT20261102000902", key=None, cert=None)
    assert put_file(rb, f)[0] == 201 and put_file(rb, f)[0] == 200 and put_file(rb, bad)[0] == 201
    got = [(u.name, u.outcome, u.reason_code) for u in rb.core.uploads]
    assert got == [(f.name, "accepted", None), (f.name, "repeat", None), (bad.name, "refused", "FF01")]
    assert {u.at for u in rb.core.uploads} == {"2026-11-02T10:00:00+08:00"}  # the bank's (injected) clock
    assert rb.core.uploads[0].sha256 == rb.core.uploads[1].sha256 == json.loads(rb.core.receipt_json(f.name))["sha256"]
    assert rb.core.uploads[0].msg_id == "YKT20261102000901"
    lines = (root / "state" / "uploads.jsonl").read_text("utf-8").splitlines()
    assert [Upload(**json.loads(x)) for x in lines] == rb.core.uploads
    rb.stop()
    again = bank("icbc-cq", scenario=accept_all(), root=root)
    assert again.core.uploads == rb.core.uploads
    assert put_file(again, f)[0] == 200 and again.core.uploads[-1].outcome == "repeat"
    assert [c.end_to_end_id for c in again.core.credits()] == ["E0000000001", "E0000000002"]  # credited once
