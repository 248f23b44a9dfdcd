"""Must show: real clients against the simulated banks — OpenSSH ``sftp`` in batch mode, ``curl``."""

from __future__ import annotations

import json
import subprocess

import pytest

from formats.flatfile import read_flat
from formats.iso20022.pain002 import read_pain002
from formats.model import TxStatus
from formats.signature import get_scheme
from simulators.testing import payments, write_instruction
from tests.support.tools import needs_tool

from sim_helpers import accept_all

needs_sftp = needs_tool("sftp")  # skipped locally when absent, a failure under CI=true
needs_curl = needs_tool("curl")


def _sftp(rb, tmp_path, commands: str, *, key=True):
    kh = tmp_path / "known_hosts"
    kh.write_text(rb.known_hosts_line())
    batch = tmp_path / "batch"
    batch.write_text(commands)
    cmd = ["sftp", "-b", str(batch), "-P", str(rb.sftp_port), "-o", "StrictHostKeyChecking=yes",
           "-o", f"UserKnownHostsFile={kh}", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
           "-o", "ConnectTimeout=10"]
    if key:
        cmd += ["-i", str(rb.keys.gateway_ssh_key)]
    return subprocess.run(cmd + [f"{rb.username}@127.0.0.1"], capture_output=True, text=True, timeout=60)


@needs_sftp
@pytest.mark.parametrize("bank_id", ["psbc-xs", "cqrcb-fj"])
def test_openssh_sftp_puts_a_file_and_gets_the_report(bank, tmp_path, bank_id):
    rb = bank(bank_id, scenario=accept_all())
    f = write_instruction(rb.bank, tmp_path / "out", list(payments(3)), msg_id="YKT20261102000101",
                          key=rb.keys.gateway_sign_key, cert=rb.keys.gateway_sign_cert)
    (tmp_path / "out" / f.signature_name).write_bytes(f.signature)
    got = tmp_path / "got"
    got.mkdir()
    r = _sftp(rb, tmp_path, f"""\
put {tmp_path / 'out' / f.signature_name} /inbox/{f.signature_name}
put {f.path} /inbox/.{f.name}.part
rename /inbox/.{f.name}.part /inbox/{f.name}
get /inbox/receipts/{f.name}.json {got}/
ls -1 /outbox
get /outbox/*.??? {got}/
get /outbox/*.???.p7s {got}/
""")
    assert r.returncode == 0, r.stderr + r.stdout
    receipt = json.loads((got / f"{f.name}.json").read_text("utf-8"))
    assert receipt["status"] == "accepted" and receipt["msg_id"] == "YKT20261102000101"
    names = sorted(p.name for p in got.iterdir() if not p.name.endswith((".json", ".p7s")))
    assert names == sorted(receipt["reports"])
    scheme = get_scheme("cms")
    for n in names:  # every report is signed by the bank and verifies against its pinned certificate
        data = (got / n).read_bytes()
        scheme.verify([data], (got / (n + ".p7s")).read_bytes(), rb.bank_keys.sign_cert.read_bytes(), source=n)
    if bank_id == "psbc-xs":
        report = next(read_pain002((got / n).read_bytes(), source=n) for n in names if "pain.002" in (got / n).read_text())
        assert report.header.original_message_id == "YKT20261102000101"
        assert [t.status for t in report.transactions] == [TxStatus.ACCEPTED_SETTLEMENT_COMPLETED] * 3
    else:
        layout = rb.core.flat_out["flat:rcb_pipe"]
        rows = read_flat((got / names[0]).read_bytes(), layout.result, source=names[0]).records
        assert [r.status for r in rows] == [TxStatus.ACCEPTED_SETTLEMENT_COMPLETED] * 3
    assert rb.core.ledger.credited_count == 3


@needs_sftp
def test_sftp_without_key_is_refused_and_sees_only_inbox_and_outbox(bank, tmp_path):
    rb = bank("psbc-xs")
    r = _sftp(rb, tmp_path, "ls /\n", key=False)  # batch mode cannot type a password: no key, no entry
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = _sftp(rb, tmp_path, "ls -1 /\n-get /state/state.json\nput /etc/hostname /inbox/x.xml\n")
    assert r.stdout.splitlines()[1:3] == ["/inbox", "/outbox"]
    assert 'File "/state/state.json" not found' in r.stderr
    # an instruction file may not be written under its final name (only .<name>.part, then rename)
    assert r.returncode != 0 and 'dest open "/inbox/x.xml": Permission denied' in r.stderr


@needs_sftp
def test_sftp_upload_then_archive_report_by_rename(bank, tmp_path):
    rb = bank("psbc-xs")
    f = write_instruction(rb.bank, tmp_path / "out", list(payments(2)), msg_id="YKT20261102000102",
                          key=rb.keys.gateway_sign_key, cert=rb.keys.gateway_sign_cert)
    intake = rb.receive(f.name, f.path, f.signature)
    first = intake.receipt.reports[0]
    r = _sftp(rb, tmp_path, f"rename /outbox/{first} /outbox/archive/{first}\n")
    assert r.returncode == 0, r.stderr
    assert first not in rb.core.list_reports() and rb.core.report_path(first) is not None


@needs_curl
def test_curl_with_client_certificate_uploads_and_fetches_status(bank, tmp_path):
    rb = bank("icbc-cq", scenario=accept_all())
    f = write_instruction(rb.bank, tmp_path, list(payments(4)), msg_id="YKT20261102000201",
                          key=rb.keys.gateway_sign_key, cert=rb.keys.gateway_sign_cert)
    k = rb.keys
    base = ["curl", "-sS", "--fail-with-body", "--cert", str(k.gateway_tls_cert), "--key", str(k.gateway_tls_key),
            "--cacert", str(k.tls_ca_cert)]
    up = subprocess.run(base + ["-X", "PUT", "--data-binary", f"@{f.path}", "-H", "Content-Type: application/xml",
                                "-w", "\n%{http_code}", f"{rb.https_url}/files/{f.name}"],
                        capture_output=True, text=True, timeout=60)
    assert up.returncode == 0, up.stderr
    body, code = up.stdout.rsplit("\n", 1)
    assert code == "201" and json.loads(body)["status"] == "accepted"
    st = subprocess.run(base + [f"{rb.https_url}/files/{f.name}"], capture_output=True, text=True, timeout=30)
    receipt = json.loads(st.stdout)
    assert receipt["status"] == "accepted" and receipt["sha256"] == json.loads(body)["sha256"]
    listing = json.loads(subprocess.run(base + [f"{rb.https_url}/reports"], capture_output=True, text=True).stdout)
    assert sorted(listing["reports"]) == sorted(receipt["reports"])
    name = receipt["reports"][0]
    report = subprocess.run(base + [f"{rb.https_url}/reports/{name}"], capture_output=True, timeout=30).stdout
    get_scheme("xmldsig").verify(report, rb.bank_keys.sign_cert.read_bytes(), source=name)
    ack = subprocess.run(base + ["-X", "POST", "-w", "%{http_code}", f"{rb.https_url}/reports/{name}/ack"],
                         capture_output=True, text=True)
    assert ack.stdout == "204"
    listing = json.loads(subprocess.run(base + [f"{rb.https_url}/reports"], capture_output=True, text=True).stdout)
    assert name not in listing["reports"]


@needs_curl
def test_client_without_certificate_is_refused_in_the_tls_handshake(bank):
    rb = bank("icbc-cq")
    r = subprocess.run(["curl", "-sS", "--cacert", str(rb.keys.tls_ca_cert), f"{rb.https_url}/health"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode in (35, 56), r  # SSL connect error / failure receiving: no HTTP answer at all
    assert r.stdout == ""
    # a certificate from another CA is refused as well
    from formats.signature.keys import make_leaf, make_test_ca

    ca_key, ca_cert = make_test_ca("rogue CA")
    key, cert = make_leaf(ca_key, ca_cert, "rogue", client=True)
    (rb.root / "rogue.key").write_bytes(key)
    (rb.root / "rogue.crt").write_bytes(cert)
    r = subprocess.run(["curl", "-sS", "--cert", str(rb.root / "rogue.crt"), "--key", str(rb.root / "rogue.key"),
                        "--cacert", str(rb.keys.tls_ca_cert), f"{rb.https_url}/health"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode in (35, 56) and r.stdout == ""
