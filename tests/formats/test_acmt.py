"""acmt.023 / acmt.024 identification verification: writers, readers, structural checks."""

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

from formats.errors import FormatError, SchemaViolation
from formats.iso20022.acmt import read_acmt023, read_acmt024, write_acmt023, write_acmt024
from formats.iso20022.strategies import verification_report, verification_request
from formats.model import VerificationQuery, VerificationReport, VerificationRequest, VerificationResult

WHEN = dt.datetime(2026, 11, 1, 9, 0)
REQUEST = VerificationRequest("Q1", WHEN, (
    VerificationQuery("1", "张三", "6222000011112222", "500101199003077777", "102653000019"),
    VerificationQuery("2", "李四", "6222000011113333"),
))
REPORT = VerificationReport("R1", WHEN, "Q1", (
    VerificationResult("1", True),
    VerificationResult("2", False, "BE01", "户名不符"),
    VerificationResult("3", False, None, "卡号不存在"),
))


def test_golden(golden, assert_canonical):
    assert read_acmt023(golden("acmt.023.001.03.xml", write_acmt023(REQUEST)), source="g") == REQUEST
    assert read_acmt024(golden("acmt.024.001.03.xml", write_acmt024(REPORT)), source="g") == REPORT
    assert_canonical(write_acmt023(REQUEST))


@given(verification_request)
@settings(max_examples=60, deadline=None)
def test_request_round_trip(request):
    assert read_acmt023(write_acmt023(request), source="p") == request


@given(verification_report)
@settings(max_examples=60, deadline=None)
def test_report_round_trip(report):
    assert read_acmt024(write_acmt024(report), source="p") == report


@pytest.mark.parametrize(
    "old, new, field",
    [
        (b"<Vrfctn>true</Vrfctn>", b"<Vrfctn>yes</Vrfctn>", "Rpt/Vrfctn"),
        (b"<OrgnlId>2</OrgnlId>", b"<OrgnlId>1</OrgnlId>", "Rpt/OrgnlId"),
        (b"<OrgnlAssgnmt><MsgId>Q1</MsgId></OrgnlAssgnmt>", b"", "OrgnlAssgnmt/MsgId"),
    ],
)
def test_report_structural_checks(old, new, field):
    doc = write_acmt024(REPORT)
    assert old in doc
    with pytest.raises(SchemaViolation) as info:
        read_acmt024(doc.replace(old, new), source="r.xml")
    assert info.value.field == field and info.value.source == "r.xml" and info.value.line == 2


def test_request_needs_account():
    doc = write_acmt023(REQUEST).replace(b"<Acct><Othr><Id>6222000011113333</Id></Othr></Acct>", b"")
    with pytest.raises(SchemaViolation) as info:
        read_acmt023(doc, source="q.xml")
    assert info.value.field == "PtyAndAcctId/Acct/Othr/Id"


@pytest.mark.parametrize("reader", [read_acmt023, read_acmt024])
@given(data=st.binary(max_size=300))
@settings(max_examples=100, deadline=None)
def test_any_bytes_give_model_or_format_error(reader, data):
    try:
        reader(data, source="fuzz")
    except FormatError:
        pass
