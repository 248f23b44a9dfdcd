"""The performance paths give exactly what the reference paths give, and stay safe.

* the readers' one-pass fast paths (``Pain002Reader._line_fast``, ``CamtReader._detail_fast``)
  against their path lookups (``_line``, ``_detail``), on generated and on odd documents;
* ``safe_iterparse`` with a schema (validating event parser + strict tree-less check) refuses
  every truncation and a bare ``&`` anywhere, fed one byte at a time;
* :class:`formats.xsd.XmllintTee`, the opt-in concurrent validation of a writer's output.
"""

import gc
import io

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from formats.errors import FormatError, MalformedInput, SchemaViolation
from formats.iso20022.camt054 import open_camt054, write_camt054
from formats.iso20022.pain001 import write_pain001
from formats.iso20022.pain002 import open_pain002, write_pain002
from formats.iso20022.strategies import notification, status_report
from formats.iso20022.testing import (
    sample_credit_transfers, sample_entries, sample_notification_header, sample_payment_header,
    sample_status_header, sample_status_lines,
)
from formats.iso20022._xmlread import Irregular
from formats.xsd import XmllintTee, xsd_path
from tests.support.tools import needs_tool

class OneByte(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._data.read(1)


def _pain002_bytes(lines=None) -> bytes:
    out = io.BytesIO()
    write_pain002(out, sample_status_header(20), lines if lines is not None else sample_status_lines(20))
    return out.getvalue()


def _camt054_bytes(entries=None) -> bytes:
    out = io.BytesIO()
    write_camt054(out, sample_notification_header(), entries if entries is not None else sample_entries(60, batch=7))
    return out.getvalue()


def _compare_pain002(data: bytes) -> int:
    """Every TxInfAndSts read both ways; returns how many took the fast path."""
    reader = open_pain002(io.BytesIO(data), source="s.xml", schema=False)
    fast = 0
    for _, elem in reader._events:
        if elem.tag != f"{{{reader.ns}}}TxInfAndSts":
            continue
        try:
            got = reader._line_fast(elem)
        except Irregular:
            continue
        fast += 1
        assert got == reader._line(elem) and got.line == reader._line(elem).line
    return fast


def _compare_camt(data: bytes) -> int:
    reader = open_camt054(io.BytesIO(data), source="n.xml", schema=False)
    fast = 0
    for _, elem in reader._events:
        if elem.tag != f"{{{reader.ns}}}TxDtls":
            continue
        facts = reader._entry_facts(elem.getparent().getparent())
        try:
            got = reader._detail_fast(elem, facts)
        except Irregular:
            continue
        fast += 1
        ref = reader._detail(elem, facts)
        assert got == ref and got.amount == ref.amount and got.line == ref.line
    return fast


def test_fast_paths_taken_for_ordinary_files():
    assert _compare_pain002(_pain002_bytes()) == 20
    assert _compare_camt(_camt054_bytes()) == 60


@given(status_report())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pain002_fast_path_equals_path_lookups(report):
    header, lines = report
    out = io.BytesIO()
    write_pain002(out, header, lines)
    _compare_pain002(out.getvalue())


@given(notification("camt.054.001.08"))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_camt_fast_path_equals_path_lookups(notif):
    header, entries = notif
    _compare_camt(_camt054_bytes_for(header, entries))


def _camt054_bytes_for(header, entries) -> bytes:
    out = io.BytesIO()
    write_camt054(out, header, entries)
    return out.getvalue()


ODD_PAIN002 = [  # shapes the fast path must hand over (or read identically)
    ("<Rsn><Cd>AC04</Cd></Rsn>", "<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn><Rsn><Cd>AC01</Cd></Rsn></StsRsnInf>"),
    ("<TxSts>ACSC</TxSts>", "<TxSts> ACSC </TxSts>"),
    ("<TxSts>ACSC</TxSts>", "<TxSts>ACSC</TxSts><!-- c --><!-- d -->"),
    (">101.37<", "> 101.37<"),
    (">101.37<", ">101.370<"),
    ("<OrgnlTxRef>", "<OrgnlTxRef><Amt><InstdAmt Ccy=\"CNY\">1.00</InstdAmt></Amt></OrgnlTxRef><OrgnlTxRef>"),
    ("<OrgnlEndToEndId>E0000000001</OrgnlEndToEndId>", "<OrgnlEndToEndId></OrgnlEndToEndId><OrgnlEndToEndId>E1</OrgnlEndToEndId>"),
]


@pytest.mark.parametrize("old, new", ODD_PAIN002)
def test_pain002_odd_shapes_read_as_before(old, new):
    data = _pain002_bytes().decode()
    assert old in data or old.replace("101.37", "") in data
    _compare_pain002(data.replace(old, new, 3).encode())


ODD_CAMT = [
    ("<Refs><EndToEndId>E0000000001</EndToEndId></Refs>", "<Refs></Refs>"),
    ("<CdtDbtInd>DBIT</CdtDbtInd><RltdPties>", "<CdtDbtInd> DBIT</CdtDbtInd><RltdPties>"),
    ("<Rsn><Cd>AC04</Cd></Rsn>", "<Rsn><Prtry>X</Prtry><Cd></Cd></Rsn>"),
    ("<RltdPties>", "<RltdPties><Cdtr><Nm>甲</Nm></Cdtr>"),
    ("<Pty><Nm>", "<Pty><Nm></Nm><Nm>"),
    ("<Othr><Id>", "<IBAN>X</IBAN><Othr><Id>"),
    ("<AddtlInf>账户已销户</AddtlInf>", "<AddtlInf></AddtlInf><AddtlInf>a</AddtlInf><AddtlInf>b</AddtlInf>"),
]


@pytest.mark.parametrize("old, new", ODD_CAMT)
def test_camt_odd_shapes_read_as_before(old, new):
    data = _camt054_bytes().decode()
    assert old in data
    _compare_camt(data.replace(old, new, 5).encode())


def test_camt_too_many_shapes_fall_back():
    reader = open_camt054(io.BytesIO(_camt054_bytes()), source="n.xml", schema=False)
    reader._shapes._max_shapes = 0
    assert len(list(reader)) == 60


# --------------------------------------------------------------------------- one libxml2 pass, still strict


@pytest.mark.parametrize("kind", ["pain002", "camt054"])
def test_every_truncation_is_refused_byte_by_byte(kind):
    data = _pain002_bytes() if kind == "pain002" else _camt054_bytes(sample_entries(5, batch=2))
    opener = open_pain002 if kind == "pain002" else open_camt054
    assert len(list(opener(OneByte(data), source="x.xml"))) in (20, 5)
    start = data.index(b"><", data.index(b"<Document")) + 1  # the message type is known from here on
    for cut in range(start, len(data), 7):
        with pytest.raises(FormatError) as info:
            list(opener(io.BytesIO(data[:cut]), source="cut.xml"))
        assert isinstance(info.value, (MalformedInput, SchemaViolation)), cut


def test_bare_ampersand_anywhere_in_text_is_refused():
    data = _pain002_bytes()
    positions = [i for i in range(data.index(b"<Document"), len(data)) if data[i:i + 1] == b">" and data[i + 1:i + 2] not in (b"<", b"")]
    assert positions
    for i in positions[::3]:
        broken = data[:i + 1] + b"& " + data[i + 1:]
        with pytest.raises(MalformedInput):
            list(open_pain002(OneByte(broken), source="amp.xml"))


# --------------------------------------------------------------------------- XmllintTee

needs_xmllint = needs_tool("xmllint")


@needs_xmllint
def test_xmllint_tee_passes_a_valid_document_and_writes_it_unchanged():
    out, plain = io.BytesIO(), io.BytesIO()
    with XmllintTee(out, xsd_path("pain.001.001.09"), source="p.xml") as sink:
        write_pain001(sink, sample_payment_header(300), sample_credit_transfers(300))
    write_pain001(plain, sample_payment_header(300), sample_credit_transfers(300))
    assert out.getvalue() == plain.getvalue()


@needs_xmllint
def test_xmllint_tee_reports_schema_violation_with_line():
    out = io.BytesIO()
    write_pain001(out, sample_payment_header(3), sample_credit_transfers(3))
    bad = out.getvalue().replace(b"<PmtMtd>TRF</PmtMtd>", b"<PmtMtd>XXX</PmtMtd>")
    with pytest.raises(SchemaViolation) as info:
        with XmllintTee(io.BytesIO(), xsd_path("pain.001.001.09"), source="bad.xml") as sink:
            sink.write(bad)
    assert info.value.source == "bad.xml" and info.value.line == 2 and "XXX" in info.value.message


@needs_xmllint
@pytest.mark.parametrize("damage", ["truncate", "ampersand"])
def test_xmllint_tee_refuses_broken_xml(damage):
    out = io.BytesIO()
    write_pain001(out, sample_payment_header(3), sample_credit_transfers(3))
    data = out.getvalue()
    data = data[: len(data) - 40] if damage == "truncate" else data.replace(b"<Nm>", b"<Nm>a & b", 1)
    with pytest.raises(MalformedInput) as info:
        with XmllintTee(io.BytesIO(), xsd_path("pain.001.001.09"), source="broken.xml") as sink:
            sink.write(data)
    assert info.value.source == "broken.xml"


@needs_xmllint
def test_xmllint_tee_lets_the_writer_error_through():
    with pytest.raises(ZeroDivisionError):
        with XmllintTee(io.BytesIO(), xsd_path("pain.001.001.09"), source="p.xml") as sink:
            sink.write(b"<?xml version='1.0'?>")
            1 / 0


# --------------------------------------------------------------------------- readers beside xmllint

def _long_camt054(n: int = 1500) -> bytes:
    """A camt.054 of ``n`` entries, one entry per line, far longer than one 64 KiB read."""
    data = _camt054_bytes(sample_entries(n, batch=7)).replace(b"</Ntry><Ntry>", b"</Ntry>\n<Ntry>")
    assert len(data) > 4 * 65536
    return data


def _xmllint_children() -> list[str]:
    import os

    pids = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            pids += f.read().split()
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as f:
                out.append(f.read().strip())
        except OSError:
            continue
    return [c for c in out if c == "xmllint"]


@needs_xmllint
def test_a_long_document_is_validated_by_xmllint_with_the_line_of_the_violation():
    """Beside xmllint the reader names the line that breaks the XSD; the in-process streaming
    validator cannot (it says "after line N")."""
    data = _long_camt054()
    lines = data.split(b"\n")
    target = next(i for i, ln in enumerate(lines) if i > 100 and b"<Nm>" in ln)
    lines[target] = lines[target].replace(b"<Nm>", b"<Nm>" + "名".encode() * 141, 1)  # Max140Text
    bad = b"\n".join(lines)
    with pytest.raises(SchemaViolation) as info:
        list(open_camt054(io.BytesIO(bad), source="long.xml"))
    assert info.value.source == "long.xml" and info.value.line == target + 1
    assert info.value.field == "Nm" and "(xmllint)" in info.value.message
    del info
    gc.collect()  # the reader that raised is gone: its xmllint with it
    assert _xmllint_children() == []


@needs_xmllint
def test_a_long_valid_document_reads_the_same_beside_xmllint_as_in_process():
    from formats.xsd import schema_for

    data = _long_camt054()
    beside = list(open_camt054(io.BytesIO(data), source="long.xml"))
    in_process = list(open_camt054(io.BytesIO(data), source="long.xml", schema=schema_for("camt.054.001.08")))
    assert len(beside) == 1500 and beside == in_process


@needs_xmllint
@pytest.mark.parametrize("damage", ["truncate", "ampersand", "mismatch"])
def test_a_long_broken_document_is_refused_beside_xmllint(damage):
    data = _long_camt054()
    if damage == "truncate":
        data = data[: len(data) * 2 // 3]
    elif damage == "ampersand":
        data = data[:200_000] + data[200_000:].replace(b"<Nm>", b"<Nm>a & b", 1)
    else:
        data = data[:200_000] + data[200_000:].replace(b"</Nm>", b"</Name>", 1)
    with pytest.raises(MalformedInput) as info:
        list(open_camt054(io.BytesIO(data), source="broken.xml"))
    assert info.value.source == "broken.xml" and info.value.line
    del info
    gc.collect()
    assert _xmllint_children() == []


@needs_xmllint
def test_a_reader_stopped_early_leaves_no_xmllint_behind():
    reader = open_camt054(io.BytesIO(_long_camt054()), source="long.xml")
    first = next(iter(reader))
    assert first.end_to_end_id and _xmllint_children() == ["xmllint"]
    reader._events.close()
    assert _xmllint_children() == []


def test_without_xmllint_a_long_document_is_validated_in_process(monkeypatch):
    import formats.xmllint

    monkeypatch.setattr(formats.xmllint, "xmllint_executable", lambda: None)
    data = _long_camt054().replace(b"<Nm>", b"<Nm>" + "名".encode() * 141, 1)
    with pytest.raises(SchemaViolation) as info:
        list(open_camt054(io.BytesIO(data), source="long.xml"))
    assert "(xmllint)" not in info.value.message and info.value.field == "Nm"
    assert _xmllint_children() == []


# --- pain.001: the reader's one-pass plan gives exactly what the path look-ups give ---------------------

from formats.iso20022.pain001 import open_pain001  # noqa: E402
from formats.iso20022.strategies import payment  # noqa: E402


def _compare_pain001(data: bytes) -> int:
    reader = open_pain001(io.BytesIO(data), source="p.xml", schema=False)
    fast = 0
    for event, elem in reader._events:
        if event != "end" or elem.tag != f"{{{reader_ns(reader)}}}CdtTrfTxInf":
            continue
        try:
            got = reader._transaction_fast(elem)
        except Irregular:
            continue
        fast += 1
        assert got == reader._transaction(elem)
    return fast


def reader_ns(reader) -> str:
    return getattr(reader, "ns", "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09")


@given(payment())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pain001_fast_path_equals_path_lookups(pay):
    header, txs = pay
    buf = io.BytesIO()
    write_pain001(buf, header, txs)
    assert _compare_pain001(buf.getvalue()) == len(txs)


def test_pain001_fast_path_taken_for_ordinary_files():
    buf = io.BytesIO()
    write_pain001(buf, sample_payment_header(50), sample_credit_transfers(50))
    assert _compare_pain001(buf.getvalue()) == 50
