"""`ykt recon import FILE --bank ID`: a bank report applied by hand, kept even when refused, idempotent."""

import datetime as dt
import io
import shutil

import pytest
from click.testing import CliRunner

from formats.iso20022.pain002 import write_pain002
from formats.model import StatusReportHeader, TransactionStatusLine, TxStatus
from formats.signature.xmldsig import sign_document
from gateway.cli.main import cli
from tests.support.gateway import ROOT
from tests.support.recon import deliver_batch, make_pii_vault, make_signing_keys


@pytest.fixture
def world(tmp_path, engine):
    keys = make_signing_keys()
    vault_line = __import__("gateway.privacy", fromlist=["PiiVault"]).PiiVault.new_key_line("k1")
    from gateway.privacy import PiiVault

    vault = PiiVault.from_text(vault_line)
    d = deliver_batch(engine, n=3, bank="icbc-cq", vault=vault, keys=keys, tmp_path=tmp_path)
    cfg_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg_dir)
    text = (cfg_dir / "banks.toml").read_text(encoding="utf-8")
    (cfg_dir / "banks.toml").write_text(text.replace('keys_dir = "../var/keys"', f'keys_dir = "{tmp_path / "keys"}"'),
                                        encoding="utf-8")
    (tmp_path / "keys" / "icbc-cq").mkdir(parents=True)
    (tmp_path / "keys" / "icbc-cq" / "sign.crt").write_bytes(keys["bank"][1])
    (tmp_path / "keys" / "pii.keys").write_text(vault_line + "\n")
    return d, cfg_dir, keys


def pain002(d, keys, *, sign=True) -> bytes:
    buf = io.BytesIO()
    header = StatusReportHeader("BANK-1", dt.datetime(2026, 11, 3, 1, tzinfo=dt.timezone.utc), d.msg_id,
                                "pain.001.001.09")
    lines = [TransactionStatusLine(e2e, TxStatus.ACCEPTED_SETTLEMENT_COMPLETED) for _, e2e, _, _ in d.items[:2]]
    lines.append(TransactionStatusLine(d.items[2][1], TxStatus.REJECTED, reason_code="AC04", reason_text="账户已销户"))
    write_pain002(buf, header, lines)
    data = buf.getvalue()
    return sign_document(data, *keys["bank"], create_slot=True) if sign else data


def run(cfg_dir, db_url, *args):
    return CliRunner().invoke(cli, ["--config", str(cfg_dir), "--db", db_url, *map(str, args)])


def test_import_applies_once(world, db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d, cfg_dir, keys = world
    f = tmp_path / "BANK-1.xml"
    f.write_bytes(pain002(d, keys))
    r = run(cfg_dir, db_url, "recon", "import", f, "--bank", "icbc-cq")
    assert r.exit_code == 0, r.output
    assert "applied BANK-1.xml: 3 change(s)" in r.output
    again = run(cfg_dir, db_url, "recon", "import", f, "--bank", "icbc-cq")
    assert again.exit_code == 0 and "nothing changed" in again.output
    proof = run(cfg_dir, db_url, "--json", "recon", "batch", str(d.batch_id))
    assert '"balances": true' in proof.output.replace("True", "true")


def test_unsigned_report_refused_but_kept(world, db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d, cfg_dir, keys = world
    f = tmp_path / "BANK-2.xml"
    f.write_bytes(pain002(d, keys, sign=False))
    r = run(cfg_dir, db_url, "recon", "import", f, "--bank", "icbc-cq")
    assert r.exit_code == 1 and "REFUSED" in r.output
    kept = list((tmp_path / "var" / "inbound" / "icbc-cq").rglob("*BANK-2.xml"))
    assert kept and kept[0].read_bytes() == f.read_bytes()


def test_a_report_read_by_the_report_worker_applies_the_same(world, db_url, tmp_path, monkeypatch):
    """The path a long report takes (issue 6): read in the worker process while the apply matches."""
    from gateway.inbound import report_worker

    worker = report_worker.ReportWorker(min_bytes=0)  # this short report through the worker too
    monkeypatch.setattr(report_worker, "WORKER", worker)
    monkeypatch.chdir(tmp_path)
    d, cfg_dir, keys = world
    f = tmp_path / "BANK-1.xml"
    f.write_bytes(pain002(d, keys))
    try:
        r = run(cfg_dir, db_url, "recon", "import", f, "--bank", "icbc-cq")
        assert worker.pid is not None  # it did the reading, and stays for the next report
    finally:
        worker.stop()
    assert r.exit_code == 0, r.output
    assert "applied BANK-1.xml: 3 change(s)" in r.output
    proof = run(cfg_dir, db_url, "--json", "recon", "batch", str(d.batch_id))
    assert '"balances": true' in proof.output.replace("True", "true")
