"""The hardened parser: settings, streaming, error wrapping."""

import io

import pytest
from hypothesis import given, settings, strategies as st
from lxml import etree

from formats.errors import FormatError, HostileInput, MalformedInput, SchemaViolation
from formats.xmlsafe import make_parser, release, safe_fromstring, safe_iterparse
from formats.xsd import schema_for, schema_from_bytes, xsd_path, resolve_schema
from formats.errors import UnsupportedMessage


def test_parser_options_are_hardened():
    p = make_parser()
    # lxml exposes no getters; prove behaviour: an entity declared inline is not expanded
    doc = b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    root = etree.fromstring(doc, p)
    assert "root:" not in (etree.tostring(root).decode())


@pytest.mark.parametrize(
    "doc, error, line",
    [
        (b"<a>\n<b>1</b>\n", MalformedInput, 3),
        (b"<a>\n<b>1</c></a>", MalformedInput, 2),
        (b"", MalformedInput, None),
        (b"\n\n<!DOCTYPE a><a/>", HostileInput, 3),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><a/>', MalformedInput, 1),
        (b"\xff\xfe<\x00a\x00/\x00>\x00", MalformedInput, 1),
    ],
)
def test_iterparse_errors_name_source_and_line(doc, error, line):
    with pytest.raises(error) as info:
        list(safe_iterparse(io.BytesIO(doc), source="in.xml", max_bytes=10_000))
    assert info.value.source == "in.xml"
    if line is not None:
        assert info.value.line == line


def test_doctype_split_across_chunks_is_found():
    doc = b"<?xml version='1.0'?>" + b" " * (64 * 1024 - 25) + b"<!DOCTYPE a><a/>"
    with pytest.raises(HostileInput):
        list(safe_iterparse(io.BytesIO(doc), source="s", max_bytes=10**6))


def test_schema_violation_while_streaming():
    xsd = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="a">
      <xs:complexType><xs:sequence><xs:element name="b" type="xs:int" maxOccurs="unbounded"/></xs:sequence></xs:complexType>
      </xs:element></xs:schema>"""
    doc = b"<a>\n<b>1</b>\n<b>x</b>\n</a>"
    seen = []
    with pytest.raises(SchemaViolation) as info:
        for _, el in safe_iterparse(io.BytesIO(doc), source="s", schema=schema_from_bytes(xsd), max_bytes=1000):
            seen.append(el.sourceline)
    # libxml2 gives no line for streaming XSD errors: the last element seen before it is named
    assert info.value.source == "s" and info.value.line in (1, 2, 3)
    assert "atomic type" in info.value.message


def test_release_keeps_memory_flat():
    doc = b"<a>" + b"<b>x</b>" * 1000 + b"</a>"
    root = None
    for ev, el in safe_iterparse(io.BytesIO(doc), source="s", tag="b", max_bytes=10**6):
        root = el.getparent()
        release(el)
    assert len(root) == 1


def test_fromstring_limits_size():
    with pytest.raises(HostileInput) as info:
        safe_fromstring(b"<a>" + b"x" * 100 + b"</a>", source="s", max_bytes=50)
    assert info.value.field == "size"


def test_official_xsds_are_loaded_from_packages():
    assert "sepaxml" in str(xsd_path("pain.001.001.09"))
    assert "pain002" in str(xsd_path("pain.002.001.14"))
    assert "camt053" in str(xsd_path("camt.053.001.02"))
    assert schema_for("camt.054.001.08") is schema_for("camt.054.001.08")
    assert resolve_schema("pain.002.001.10", None) is None
    with pytest.raises(UnsupportedMessage, match="no official XSD"):
        xsd_path("acmt.023.001.03")


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_any_bytes_give_elements_or_format_error(data):
    try:
        list(safe_iterparse(io.BytesIO(data), source="fuzz", max_bytes=1000))
        safe_fromstring(data, source="fuzz", max_bytes=1000)
    except FormatError:
        pass


@pytest.mark.parametrize(
    "doc",
    [
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.12"><CstmrPmtStsRpt>\n<GrpHdr>\n<MsgId>M1 & </MsgId>',
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.12"><CstmrPmtStsRpt>\n<GrpHdr>\n<MsgId>M1</MsgId>\n',
    ],
)
def test_bug_lxml_iterparse_with_schema_silently_recovers(doc):
    """lxml's iterparse(schema=...) swallows well-formedness errors (bare '&', truncation) and
    closes the open elements: records after the damage would vanish. safe_iterparse must not."""
    with pytest.raises(MalformedInput):
        list(safe_iterparse(io.BytesIO(doc), source="s", schema=schema_for("pain.002.001.12"), max_bytes=10_000))
