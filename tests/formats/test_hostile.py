"""Hostile input to every reader: refused with a FormatError naming source, line and field, quickly
and in little memory. (Signature wrapping and unknown signers: ``test_signature_xmldsig.py``.)"""

import io
import time
import tracemalloc

import pytest

from formats.errors import FormatError, HostileInput, MalformedInput
from formats.iso20022.acmt import read_acmt023
from formats.iso20022.camt053 import read_camt053
from formats.iso20022.camt054 import read_camt054
from formats.iso20022.pain001 import open_pain001, read_pain001
from formats.iso20022.pain002 import read_pain002
from formats.xmlsafe import safe_fromstring

NS = "urn:iso:std:iso:20022:tech:xsd:"
ROOTS = {
    "pain.001.001.09": ("CstmrCdtTrfInitn", read_pain001),
    "pain.002.001.12": ("CstmrPmtStsRpt", read_pain002),
    "camt.054.001.08": ("BkToCstmrDbtCdtNtfctn", read_camt054),
    "camt.053.001.08": ("BkToCstmrStmt", read_camt053),
    "acmt.023.001.03": ("IdVrfctnReq", read_acmt023),
}
LAUGHS = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10}">' for i in range(1, 10))

# attack -> (document after the XML declaration, line, field and value the error must name)
ATTACKS = {
    "xxe-file": ('<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<Document xmlns="{ns}"><{root}><GrpHdr><MsgId>&x;</MsgId></GrpHdr></{root}></Document>',
                 2, "DOCTYPE", "Document"),
    "xxe-network": ('<!DOCTYPE Document [<!ENTITY x SYSTEM "http://127.0.0.1:9/evil">]>\n<Document xmlns="{ns}"><{root}>&x;</{root}></Document>',
                    2, "DOCTYPE", "Document"),
    "billion-laughs": ('<!DOCTYPE Document [<!ENTITY l0 "ha">' + LAUGHS + ']>\n<Document xmlns="{ns}"><{root}>&l9;</{root}></Document>',
                       2, "DOCTYPE", "Document"),
    "external-dtd": ('<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/x.dtd">\n<Document xmlns="{ns}"><{root}/></Document>',
                     2, "DOCTYPE", "Document"),
    "parameter-entity": ('<!DOCTYPE Document [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n<Document xmlns="{ns}"/>',
                         2, "DOCTYPE", "Document"),
    "doctype-after-comments": ('<!-- a bank header -->\n<!-- generated -->\n\n<!DOCTYPE Doc SYSTEM "file:///etc/passwd">\n<Document xmlns="{ns}"/>',
                               5, "DOCTYPE", "Doc"),
    "entity-without-doctype": ('<!-- -->\n<!ENTITY % evil SYSTEM "http://127.0.0.1:9/e">\n<Document xmlns="{ns}"/>',
                               3, "ENTITY", "evil"),
}


def _doc(template: str, message_type: str) -> bytes:
    root = ROOTS[message_type][0]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + template.replace("{ns}", NS + message_type)
            .replace("{root}", root)).encode()


@pytest.mark.parametrize("message_type", sorted(ROOTS))
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_declarations_refused_before_parsing(attack, message_type):
    reader = ROOTS[message_type][1]
    template, line, field, value = ATTACKS[attack]
    document = _doc(template, message_type)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(HostileInput) as info:
            reader(document, source=f"{attack}.xml")
        elapsed, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0 and peak < 4 * 1024 * 1024
    err = info.value
    assert (err.source, err.line, err.field, err.value) == (f"{attack}.xml", line, field, value)
    assert str(err).startswith(f"{attack}.xml:{line}: {field}={value!r}: ")
    assert "root:" not in str(err)


@pytest.mark.parametrize("message_type", sorted(ROOTS))
@pytest.mark.parametrize(
    "cut, line, field",
    [
        ("<GrpHdr>\n<MsgId>M1</MsgId>\n", 5, "GrpHdr"),  # the element open where the file ends
        ("<GrpHdr>\n<MsgId>M1", 4, "MsgId"),
        ("<GrpHdr>\n<MsgI", 4, "MsgI"),  # inside a start tag: the name as far as it got
    ],
    ids=["after a line", "inside text", "inside a tag"],
)
def test_truncated_refused_naming_line_and_open_element(message_type, cut, line, field):
    doc = _doc('<Document xmlns="{ns}"><{root}>\n' + cut, message_type)
    with pytest.raises(MalformedInput) as info:
        ROOTS[message_type][1](doc, source="cut.xml")
    assert (info.value.source, info.value.line, info.value.field) == ("cut.xml", line, field), info.value


def test_oversize_stream_refused_in_bounded_memory():
    """A 'file' of endless bytes is cut at max_bytes, never read whole."""

    class Endless(io.RawIOBase):
        def __init__(self):
            self.given = 0
            self.head = (f'<?xml version="1.0"?>\n<Document xmlns="{NS}pain.001.001.09"><CstmrCdtTrfInitn><GrpHdr><MsgId>'
                         ).encode()

        def readable(self):
            return True

        def read(self, n=-1):
            n = 65536 if n is None or n < 0 else n
            chunk = self.head[:n] if self.head else b"x" * n
            self.head = self.head[len(chunk):]
            self.given += len(chunk)
            return chunk

    stream = Endless()
    start = time.perf_counter()
    with pytest.raises(HostileInput) as info:
        reader = open_pain001(stream, source="huge.xml", max_bytes=5_000_000)
        list(reader)
    assert time.perf_counter() - start < 5
    assert info.value.field == "size" and info.value.line == 2 and stream.given < 6_000_000


def test_deep_nesting_refused():
    doc = b"<a>" * 100_000 + b"</a>" * 100_000
    with pytest.raises(FormatError):
        safe_fromstring(doc, source="deep.xml", max_bytes=10**7)


def test_parser_alone_does_not_fetch_or_expand():
    """Even if the pre-check were bypassed, lxml is configured not to resolve entities."""
    from lxml import etree

    from formats.xmlsafe import make_parser

    doc = b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    text = etree.tostring(etree.fromstring(doc, make_parser()))
    assert b"root:" not in text
