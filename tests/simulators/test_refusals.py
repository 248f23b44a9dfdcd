"""Must show: a file signed with the wrong key, a replayed MsgId and a control-sum mismatch are each
refused, with the reason in the bank's format, and nothing is credited."""

from __future__ import annotations

import pytest

from formats.flatfile import read_flat
from formats.iso20022.pain002 import read_pain002
from formats.model import TxStatus
from formats.signature.keys import make_leaf, make_test_ca
from simulators.testing import payments, payments_total, sign_file, write_instruction

from sim_helpers import accept_all, put_file, reports


@pytest.fixture(scope="module")
def rogue(tmp_path_factory):
    d = tmp_path_factory.mktemp("rogue")
    ca_key, ca_cert = make_test_ca("rogue CA")
    key, cert = make_leaf(ca_key, ca_cert, "yikatong gateway signing")  # same name, other key
    (d / "sign.key").write_bytes(key)
    (d / "sign.crt").write_bytes(cert)
    return d / "sign.key", d / "sign.crt"


def _only_report(rb):
    reps = reports(rb)
    assert len(reps) == 1, sorted(reps)
    return next(iter(reps.items()))


def _group_rejection(rb, code: str):
    name, data = _only_report(rb)
    r = read_pain002(data, source=name)
    assert r.header.group_status is TxStatus.REJECTED and r.header.group_reason_code == code
    assert r.transactions == ()
    return r


@pytest.mark.parametrize("bank_id", ["psbc-xs", "icbc-cq", "cqrcb-fj"])
def test_wrong_key_is_refused_and_nothing_credited(bank, tmp_path, rogue, bank_id):
    rb = bank(bank_id, scenario=accept_all())
    f = write_instruction(rb.bank, tmp_path, list(payments(3)), msg_id="YKT20261102000301", key=rogue[0], cert=rogue[1])
    intake = rb.receive(f.name, f.path, f.signature)
    assert intake.receipt.status == "refused" and intake.receipt.reason_code == "FF01"
    assert "签名验证失败" in intake.receipt.reason
    if bank_id == "cqrcb-fj":
        name, data = _only_report(rb)
        rows = read_flat(data, rb.core.flat_out["flat:rcb_pipe"].result, source=name,
                         reasons=rb.core.reasons).records
        assert len(rows) == 3 and {(r.status, r.reason_code) for r in rows} == {(TxStatus.REJECTED, "FF01")}
    else:
        _group_rejection(rb, "FF01")
    assert rb.core.ledger.credited_count == 0 and rb.core.ledger.credited_fen == 0


def test_unsigned_and_tampered_files_are_refused(bank, tmp_path):
    rb = bank("psbc-xs", scenario=accept_all())
    f = write_instruction(rb.bank, tmp_path, list(payments(2)), msg_id="YKT20261102000302", key=None, cert=None)
    assert rb.receive(f.name, f.path, None).receipt.reason_code == "FF01"
    g = write_instruction(rb.bank, tmp_path, list(payments(2)), msg_id="YKT20261102000303",
                          key=rb.keys.gateway_sign_key, cert=rb.keys.gateway_sign_cert)
    g.path.write_bytes(g.path.read_bytes().replace(b"6222000000000000001", b"6222000000000000009"))
    intake = rb.receive(g.name, g.path, g.signature)
    assert intake.receipt.status == "refused" and intake.receipt.reason_code == "FF01"
    assert rb.core.ledger.credited_count == 0


@pytest.mark.parametrize("bank_id", ["icbc-cq", "cqrcb-fj"])
def test_replayed_msgid_is_refused_but_the_same_bytes_again_are_a_no_op(bank, tmp_path, bank_id):
    rb = bank(bank_id, scenario=accept_all())
    k = rb.keys
    f = write_instruction(rb.bank, tmp_path / "a", list(payments(3)), msg_id="YKT20261102000401",
                          key=k.gateway_sign_key, cert=k.gateway_sign_cert)
    status, first = put_file(rb, f)
    assert status == 201 and first["status"] == "accepted"
    before = set(reports(rb))
    assert put_file(rb, f) == (200, first)  # a retry after a crash: harmless, nothing new
    assert set(reports(rb)) == before and rb.core.ledger.credited_count == 3
    # same MsgId, other bytes (one more payment): a replay
    g = write_instruction(rb.bank, tmp_path / "b", list(payments(4)), msg_id="YKT20261102000401",
                          key=k.gateway_sign_key, cert=k.gateway_sign_cert)
    status, body = put_file(rb, g)
    assert status == 409 and body["status"] == "refused" and body["reason_code"] == "DU01"
    new = {n: b for n, b in reports(rb).items() if n not in before}
    assert len(new) == 1
    name, data = next(iter(new.items()))
    if bank_id == "cqrcb-fj":
        rows = read_flat(data, rb.core.flat_out["flat:rcb_pipe"].result, source=name, reasons=rb.core.reasons).records
        assert len(rows) == 4 and {r.reason_code for r in rows} == {"DU01"}
        assert all(r.status is TxStatus.REJECTED for r in rows)
    else:
        r = read_pain002(data, source=name)
        assert (r.header.group_status, r.header.group_reason_code) == (TxStatus.REJECTED, "DU01")
        assert r.header.original_message_id == "YKT20261102000401"
    assert rb.core.ledger.credited_count == 3  # only the first file's payments, once
    # the first file's receipt is untouched
    assert rb.core.receipt_json(f.name) is not None and b'"accepted"' in rb.core.receipt_json(f.name)


@pytest.mark.parametrize("bank_id", ["psbc-xs", "cqrcb-fj"])
def test_control_sum_mismatch_is_refused_and_nothing_credited(bank, tmp_path, bank_id):
    rb = bank(bank_id, scenario=accept_all())
    k = rb.keys
    f = write_instruction(rb.bank, tmp_path, list(payments(3)), msg_id="YKT20261102000501",
                          key=None, cert=None)
    data = f.path.read_bytes()
    total = str(payments_total(3)).encode()  # 308.22
    if bank_id == "cqrcb-fj":
        data = data.replace(b"|3|" + total + b"\r\n", b"|3|308.23\r\n", 1)  # header H|date|unit|count|sum
    else:
        data = data.replace(b"<CtrlSum>" + total + b"</CtrlSum>", b"<CtrlSum>308.23</CtrlSum>")
    assert data != f.path.read_bytes()
    f.path.write_bytes(data)
    sig = sign_file(rb.bank, f.path, key=k.gateway_sign_key, cert=k.gateway_sign_cert)  # correctly signed
    intake = rb.receive(f.name, f.path, sig)
    assert intake.receipt.status == "refused" and intake.receipt.reason_code == "AM09"
    if bank_id == "cqrcb-fj":
        name, body = _only_report(rb)
        rows = read_flat(body, rb.core.flat_out["flat:rcb_pipe"].result, source=name, reasons=rb.core.reasons).records
        assert rows and {(r.status, r.reason_code) for r in rows} == {(TxStatus.REJECTED, "AM09")}
    else:
        _group_rejection(rb, "AM09")
    assert rb.core.ledger.credited_count == 0
