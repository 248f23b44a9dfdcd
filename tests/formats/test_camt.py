"""camt.054 / camt.053: streaming readers (batch entries, returns, .001.02 tolerance) and writers."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from formats.errors import FormatError, SchemaViolation, UnsupportedMessage
from formats.iso20022.camt053 import open_camt053, read_camt053, write_camt053
from formats.iso20022.camt054 import open_camt054, read_camt054, write_camt054
from formats.iso20022.strategies import notification
from formats.iso20022.testing import sample_entries, sample_notification_header
from formats.model import CreditDebit
from formats.xsd import xsd_path

WRITERS = {"camt.054.001.08": write_camt054, "camt.053.001.08": write_camt053}
READERS = {"camt.054.001.08": read_camt054, "camt.053.001.08": read_camt053}


def _write(message_type, header, entries) -> bytes:
    out = io.BytesIO()
    WRITERS[message_type](out, header, entries)
    return out.getvalue()


@pytest.mark.parametrize("message_type", sorted(WRITERS))
def test_golden(message_type, golden, xmllint, assert_canonical):
    header = sample_notification_header(message_type)
    data = _write(message_type, header, sample_entries(45, batch=10))
    golden(f"{message_type}.xml", data)
    assert_canonical(data)
    xmllint(data, xsd_path(message_type))
    back = READERS[message_type](data, source="g.xml")
    assert back.header == header
    assert back.entries == tuple(sample_entries(45, batch=10))
    returns = [e for e in back.entries if e.is_return]
    assert [r.end_to_end_id for r in returns] == ["E0000000020", "E0000000040"]
    assert returns[0].return_reason_code == "AC04" and returns[0].credit_debit is CreditDebit.CREDIT


def test_batch_entries_share_one_ntry():
    data = _write("camt.054.001.08", sample_notification_header(), sample_entries(45, batch=10))
    assert data.count(b"<Ntry>") < 45 and data.count(b"<TxDtls>") == 45


@pytest.mark.parametrize("message_type", sorted(WRITERS))
@given(data=st.data())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip(message_type, data, xmllint):
    header, entries = data.draw(notification(message_type))
    doc = _write(message_type, header, entries)
    xmllint(doc, xsd_path(message_type))
    back = READERS[message_type](doc, source="prop")
    assert back.header == header and back.entries == tuple(entries)


def test_reads_camt054_001_02_with_returns_and_pending(golden):
    reader = open_camt054(io.BytesIO(golden("camt.054.001.02.xml")), source="old.xml")
    assert reader.message_type == "camt.054.001.02"
    entries = list(reader)
    assert [(e.end_to_end_id, e.amount, e.is_return, e.line) for e in entries] == [
        ("E0000000001", Decimal("100.00"), False, 18),
        ("E0000000002", Decimal("200.00"), False, 23),
        ("E0000000001", Decimal("100.00"), True, 36),
    ]
    assert entries[0].counterparty_name == "张三" and entries[0].booking_date == dt.date(2026, 11, 3)
    assert entries[2].return_reason_code == "AC04" and entries[2].return_reason_text == "账户已销户"
    assert reader.not_booked == [(42, "PDNG", None)]


def test_camt053_returns_inside_statement():
    header = sample_notification_header("camt.053.001.08")
    doc = _write("camt.053.001.08", header, sample_entries(20))
    stmt = open_camt053(io.BytesIO(doc), source="s.xml")
    assert [e.end_to_end_id for e in stmt if e.is_return] == ["E0000000020"]


def test_wrong_currency_and_type_refused():
    doc = _write("camt.054.001.08", sample_notification_header(), sample_entries(2))
    with pytest.raises(UnsupportedMessage) as info:
        list(open_camt054(io.BytesIO(doc.replace(b'Ccy="CNY"', b'Ccy="USD"')), source="usd.xml"))
    assert info.value.field == "Ntry/Amt/@Ccy" and info.value.line == 2
    with pytest.raises(UnsupportedMessage):
        read_camt053(doc, source="wrong.xml")


def test_missing_amount_in_batch_is_schema_violation():
    doc = _write("camt.054.001.08", sample_notification_header(), sample_entries(3, batch=10))
    bad = doc.replace(b'<Amt Ccy="CNY">101.37</Amt><CdtDbtInd>DBIT</CdtDbtInd></TxDtls>'.replace(b"</TxDtls>", b""), b"", 1)
    with pytest.raises(FormatError):
        read_camt054(bad, source="b.xml", schema=False)


@pytest.mark.parametrize("reader", [read_camt054, read_camt053])
@given(data=st.binary(max_size=400))
@settings(max_examples=100, deadline=None)
def test_any_bytes_give_model_or_format_error(reader, data):
    try:
        reader(data, source="fuzz")
    except FormatError:
        pass


@given(data=st.data())
@settings(max_examples=100, deadline=None)
def test_mutated_documents_give_model_or_format_error(data):
    doc = bytearray(_write("camt.054.001.08", sample_notification_header(), sample_entries(4, batch=2)))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, max(0, len(doc) - 1)))
        op = data.draw(st.sampled_from(["flip", "cut", "dup"]))
        if op == "flip" and doc:
            doc[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del doc[i:i + data.draw(st.integers(1, 40))]
        else:
            doc[i:i] = doc[i:i + data.draw(st.integers(1, 40))]
    for schema in (None, False):
        try:
            read_camt054(bytes(doc), source="mutant", schema=schema)
        except FormatError:
            pass
