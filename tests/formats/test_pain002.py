"""pain.002 .03/.10/.12/.14: writer (XSD-valid where an XSD exists) and streaming reader."""

import dataclasses
import io

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from formats.errors import FormatError, MalformedInput, OutboundFormatError, SchemaViolation, UnsupportedMessage
from formats.iso20022.pain002 import VERSIONS, open_pain002, read_pain002, write_pain002
from formats.iso20022.strategies import status_report
from formats.iso20022.testing import sample_status_header, sample_status_lines
from formats.model import TxStatus
from formats.xsd import OFFICIAL_XSDS, xsd_path


def _write(header, lines, **kw) -> bytes:
    out = io.BytesIO()
    write_pain002(out, header, lines, **kw)
    return out.getvalue()


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_golden_per_version(version, golden, xmllint, assert_canonical):
    data = _write(sample_status_header(12), sample_status_lines(12), version=version)
    golden(f"{version}.xml", data)
    assert_canonical(data)
    if version in OFFICIAL_XSDS:
        xmllint(data, xsd_path(version))
    reader = open_pain002(io.BytesIO(data), source="g.xml")
    assert reader.message_type == version and reader.header == sample_status_header(12)
    lines = list(reader)
    assert lines == list(sample_status_lines(12))
    assert lines[9].reason_code == "AC04" and lines[9].reason_text == "账户已销户"
    assert all(l.line > 1 for l in lines)


@pytest.mark.parametrize("version", sorted(VERSIONS))
@given(data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip_every_version(version, data, xmllint):
    header, lines = data.draw(status_report(version))
    doc = _write(header, lines, version=version)
    if version in OFFICIAL_XSDS:
        xmllint(doc, xsd_path(version))
    back = read_pain002(doc, source="prop")
    assert back.header == header and back.transactions == tuple(lines)


def test_v03_cannot_carry_accc_nor_a_signature():
    lines = [dataclasses.replace(next(sample_status_lines(1)), status=TxStatus.ACCEPTED_CREDIT_SETTLEMENT_COMPLETED)]
    with pytest.raises(OutboundFormatError):
        _write(sample_status_header(1), lines, version="pain.002.001.03")
    with pytest.raises(OutboundFormatError):
        _write(sample_status_header(1), [], version="pain.002.001.03", signer=object())


def test_signed_status_report_verifies(xmllint):
    from formats.signature.keys import make_leaf, make_test_ca
    from formats.signature.xmldsig import StreamingEnvelopedSigner, verify_document

    ca_key, ca_cert = make_test_ca("Test CA")
    key, cert = make_leaf(ca_key, ca_cert, "bank")
    data = _write(sample_status_header(3), sample_status_lines(3), signer=StreamingEnvelopedSigner(key, cert))
    xmllint(data, xsd_path("pain.002.001.12"))
    verify_document(data, cert, source="sig.xml")


def test_xsd_violation_while_streaming_is_schema_violation():
    data = _write(sample_status_header(3), sample_status_lines(3), version="pain.002.001.12")
    bad = data.replace(b"<TxSts>ACSC</TxSts>", b"<TxSts>ACSC</TxSts><Unknown>1</Unknown>", 1)
    with pytest.raises(SchemaViolation) as info:
        list(open_pain002(io.BytesIO(bad), source="bad.xml"))
    assert info.value.source == "bad.xml" and info.value.line


def test_v10_structural_checks():
    data = _write(sample_status_header(2), sample_status_lines(2), version="pain.002.001.10")
    no_e2e = data.replace(b"<OrgnlEndToEndId>E0000000002</OrgnlEndToEndId>", b"")
    with pytest.raises(SchemaViolation) as info:
        read_pain002(no_e2e, source="v10.xml")
    assert info.value.field == "OrgnlEndToEndId" and info.value.line == 2
    unknown = data.replace(b"<TxSts>ACSC</TxSts>", b"<TxSts>XXXX</TxSts>", 1)
    with pytest.raises(MalformedInput) as info:
        read_pain002(unknown, source="v10.xml")
    assert info.value.field == "TxSts" and info.value.value == "XXXX"


@pytest.mark.parametrize("ns", ["pain.002.001.02", "pain.002.001.15", "camt.054.001.08"])
def test_other_versions_unsupported(ns):
    with pytest.raises(UnsupportedMessage):
        read_pain002(f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{ns}"/>'.encode(), source="x.xml")


@given(st.binary(max_size=400))
@settings(max_examples=150, deadline=None)
def test_any_bytes_give_model_or_format_error(data):
    try:
        read_pain002(data, source="fuzz")
    except FormatError:
        pass


@pytest.mark.parametrize("version", ["pain.002.001.10", "pain.002.001.12"])
@given(data=st.data())
@settings(max_examples=100, deadline=None)
def test_mutated_documents_give_model_or_format_error(version, data):
    doc = bytearray(_write(sample_status_header(3), sample_status_lines(3), version=version))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, max(0, len(doc) - 1)))
        op = data.draw(st.sampled_from(["flip", "cut", "dup"]))
        if op == "flip" and doc:
            doc[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del doc[i:i + data.draw(st.integers(1, 40))]
        else:
            doc[i:i] = doc[i:i + data.draw(st.integers(1, 40))]
    try:
        read_pain002(bytes(doc), source="mutant")
    except FormatError:
        pass
