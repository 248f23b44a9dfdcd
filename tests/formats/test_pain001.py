"""pain.001.001.09: streaming writer (canonical, XSD-valid, signable) and streaming reader."""

import dataclasses
import functools
import io
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from formats.errors import ControlTotalMismatch, FormatError, OutboundFormatError, UnsupportedMessage
from formats.iso20022.pain001 import open_pain001, read_pain001, write_pain001
from formats.iso20022.strategies import payment
from formats.iso20022.testing import sample_credit_transfers, sample_payment_header
from formats.signature.xmldsig import StreamingEnvelopedSigner, verify_document
from formats.xsd import xsd_path

try:
    from signing_fixtures import pki, write, xmlsec1_verify
except ImportError:  # tests/ imported as a package
    from tests.formats.signing_fixtures import pki, write, xmlsec1_verify

XSD = xsd_path("pain.001.001.09")


def _write(header, txs, **kw) -> bytes:
    out = io.BytesIO()
    write_pain001(out, header, txs, **kw)
    return out.getvalue()


def test_golden_file(golden, xmllint, assert_canonical):
    data = _write(sample_payment_header(3), sample_credit_transfers(3))
    golden("pain.001.001.09.xml", data)
    assert_canonical(data)
    xmllint(data, XSD)
    back = read_pain001(data, source="golden")
    assert back.header == sample_payment_header(3)
    assert back.transactions == tuple(sample_credit_transfers(3))


@given(payment())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip_canonical_and_xsd_valid(xmllint, assert_canonical, msg):
    header, txs = msg
    data = _write(header, txs)
    assert_canonical(data)
    xmllint(data, XSD)
    back = read_pain001(data, source="prop")
    assert back.header == header
    assert back.transactions == tuple(txs)


@functools.cache
def _signed(which: str = "rsa") -> tuple[bytes, bytes]:
    """A pain.001 signed by the production writer (signature in ``SplmtryData/Envlp``), and its
    tampered copy (a creditor's name changed after signing)."""
    p = pki()
    key, cert = (p.key, p.cert) if which == "rsa" else (p.ec_key, p.ec_cert)
    out = io.BytesIO()
    result = write_pain001(out, sample_payment_header(5), sample_credit_transfers(5),
                           signer=StreamingEnvelopedSigner(key, cert))
    data = out.getvalue()
    assert result.signed and len(result.document_digest) == 32
    assert b"<SplmtryData><Envlp><ds:Signature" in data
    tampered = data.replace(b"<Nm>\xe6\x9d\x8e\xe5\x9b\x9b</Nm>", b"<Nm>\xe7\x8e\x8b\xe4\xba\x94</Nm>", 1)
    assert tampered != data
    return data, tampered


def test_signed_document_verifies_and_is_xsd_valid(xmllint):
    data, tampered = _signed()
    xmllint(data, XSD)
    verify_document(data, pki().cert, source="signed.xml")
    assert read_pain001(data, source="signed").transactions == tuple(sample_credit_transfers(5))
    with pytest.raises(FormatError):
        verify_document(tampered, pki().cert, source="tampered.xml")


@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_signed_document_passes_xmlsec1_and_a_tampered_copy_does_not(tmp_path, which):
    """The independent check: xmlsec1 verifies the writer's signature against the signer's
    certificate alone and through the CA, and rejects the document once a name is changed."""
    data, tampered = _signed(which)
    cert = str(write(tmp_path, "signer.pem", pki().cert if which == "rsa" else pki().ec_cert))
    assert xmlsec1_verify(tmp_path, data, "--pubkey-cert-pem", cert)
    assert xmlsec1_verify(tmp_path, data)
    assert not xmlsec1_verify(tmp_path, tampered, "--pubkey-cert-pem", cert)
    assert not xmlsec1_verify(tmp_path, tampered)
    other = str(write(tmp_path, "other.pem", pki().other_cert))
    assert not xmlsec1_verify(tmp_path, data, "--pubkey-cert-pem", other)


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(number_of_transactions=4), "NbOfTxs"),
        (dict(control_sum=Decimal("1.00")), "CtrlSum"),
        (dict(message_id="M" * 36), "MsgId"),
        (dict(currency="cny"), "currency"),
        (dict(debtor_name="   "), "Dbtr/Nm"),
    ],
)
def test_writer_refuses_bad_header(change, field):
    header = dataclasses.replace(sample_payment_header(3), **change)
    with pytest.raises(OutboundFormatError) as info:
        _write(header, sample_credit_transfers(3))
    assert info.value.field == field


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(amount=Decimal("0.001")), "InstdAmt"),
        (dict(amount=Decimal("-1.00")), "InstdAmt"),
        (dict(amount=1.5), "InstdAmt"),
        (dict(creditor_name="a\x00b"), "Cdtr/Nm"),
        (dict(remittance="x" * 141), "RmtInf/Ustrd"),
    ],
)
def test_writer_refuses_bad_transaction_naming_index(change, field):
    txs = list(sample_credit_transfers(3))
    txs[1] = dataclasses.replace(txs[1], **change)
    with pytest.raises(OutboundFormatError) as info:
        _write(sample_payment_header(3), txs)
    assert (info.value.field, info.value.line) == (field, 2)


def test_reader_streams_with_line_numbers_and_checks_totals():
    data = _write(sample_payment_header(3), sample_credit_transfers(3))
    bad = data.replace(b"<NbOfTxs>3</NbOfTxs>", b"<NbOfTxs>4</NbOfTxs>")
    reader = open_pain001(io.BytesIO(bad), source="short.xml")
    assert reader.header.number_of_transactions == 4
    with pytest.raises(ControlTotalMismatch) as info:
        list(reader)
    assert info.value.source == "short.xml" and info.value.field == "NbOfTxs"


def test_reader_refuses_other_messages():
    with pytest.raises(UnsupportedMessage):
        read_pain001(b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>', source="old.xml")


def test_writer_memory_does_not_hold_transactions():
    """The writer consumes a generator lazily: a huge count never materialises."""
    seen = []

    def gen():
        for t in sample_credit_transfers(2000):
            seen.append(1)
            yield t

    class Sink(io.RawIOBase):
        def __init__(self):
            self.n = 0
            self.max_chunk = 0

        def write(self, b):
            self.n += len(b)
            self.max_chunk = max(self.max_chunk, len(b))
            return len(b)

    sink = Sink()
    write_pain001(sink, sample_payment_header(2000), gen())
    assert len(seen) == 2000 and sink.max_chunk < 2 * 1024 * 1024 and sink.n > 1_000_000


@given(st.binary(max_size=400))
@settings(max_examples=150, deadline=None)
def test_any_bytes_give_model_or_format_error(data):
    try:
        read_pain001(data, source="fuzz")
    except FormatError:
        pass


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_mutated_documents_give_model_or_format_error(data):
    doc = bytearray(_write(sample_payment_header(2), sample_credit_transfers(2)))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(doc) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "dup"]))
        if op == "flip":
            doc[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del doc[i:i + data.draw(st.integers(1, 40))]
        else:
            doc[i:i] = doc[i:i + data.draw(st.integers(1, 40))]
        if not doc:
            break
    try:
        read_pain001(bytes(doc), source="mutant")
    except FormatError:
        pass
