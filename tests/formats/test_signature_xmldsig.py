"""Enveloped XML signatures: xmlsec1 and signxml accept ours; altered, unsigned, unknown-key and
wrapped documents are each refused with their own error."""

from __future__ import annotations

import base64
import functools
import hashlib
import time

import pytest
from hypothesis import given, settings, strategies as st
from lxml import etree

from formats.errors import (
    FormatError,
    HostileInput,
    MalformedInput,
    OutboundFormatError,
    SignatureInvalid,
    SignatureWrapping,
    UnknownSigner,
    Unsigned,
)
from formats.signature.xmldsig import DS_NS, StreamingEnvelopedSigner, sign_document, verify_document

try:
    from signing_fixtures import pki, write, xmlsec1_verify
except ImportError:  # tests/ imported as a package
    from tests.formats.signing_fixtures import pki, write, xmlsec1_verify

PAIN001_NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
PAIN002_NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"

# A pain.001-like document already in exclusive-c14n form, with an empty signature slot: what the
# ISO writer streams. Written by hand on purpose (whitespace text nodes, an attribute, Chinese text).
PAIN001_C14N = f"""<Document xmlns="{PAIN001_NS}"><CstmrCdtTrfInitn>
  <GrpHdr><MsgId>YKT-20240301-0001</MsgId><CreDtTm>2024-03-01T09:30:00+08:00</CreDtTm><NbOfTxs>2</NbOfTxs><CtrlSum>300.00</CtrlSum><InitgPty><Nm>重庆市某县财政局</Nm></InitgPty></GrpHdr>
  <PmtInf><PmtInfId>P1</PmtInfId><PmtMtd>TRF</PmtMtd><NbOfTxs>2</NbOfTxs><CtrlSum>300.00</CtrlSum>
    <CdtTrfTxInf><PmtId><EndToEndId>E1</EndToEndId></PmtId><Amt><InstdAmt Ccy="CNY">100.00</InstdAmt></Amt><Cdtr><Nm>张三</Nm></Cdtr></CdtTrfTxInf>
    <CdtTrfTxInf><PmtId><EndToEndId>E2</EndToEndId></PmtId><Amt><InstdAmt Ccy="CNY">200.00</InstdAmt></Amt><Cdtr><Nm>李四 &amp; 王五</Nm></Cdtr></CdtTrfTxInf>
  </PmtInf>
  <SplmtryData><Envlp></Envlp></SplmtryData>
</CstmrCdtTrfInitn></Document>""".encode("utf-8")

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

PAIN002 = f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{PAIN002_NS}">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>BANK-RPT-1</MsgId><CreDtTm>2024-03-02T10:00:00+08:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts><OrgnlMsgId>YKT-20240301-0001</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts><OrgnlPmtInfId>P1</OrgnlPmtInfId>
      <TxInfAndSts><OrgnlEndToEndId>E1</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>
      <TxInfAndSts><OrgnlEndToEndId>E2</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf></TxInfAndSts>
    </OrgnlPmtInfAndSts>
  </CstmrPmtStsRpt>
</Document>""".encode("utf-8")


def stream_sign(c14n_document: bytes, key: bytes, cert: bytes) -> bytes:
    """What the streaming ISO writer does: digest the chunks, then drop the signature in the slot."""
    slot = c14n_document.index(b"<Envlp>") + len(b"<Envlp>")
    head, tail = c14n_document[:slot], c14n_document[slot:]
    running = hashlib.sha256()
    for part in (head[:50], head[50:], tail):  # streamed in pieces, as a writer would
        running.update(part)
    signature = StreamingEnvelopedSigner(key, cert).signature_xml(running.digest())
    return XML_DECLARATION + head + signature + tail


@functools.cache
def signed_pain002() -> bytes:
    return sign_document(PAIN002, pki().key, pki().cert, create_slot=True)


# --------------------------------------------------------------------------- streaming signer


def test_hand_written_document_is_exclusive_c14n():
    """The premise of the streaming test: our fixture bytes are already exc-c14n."""
    assert etree.tostring(etree.fromstring(PAIN001_C14N), method="c14n", exclusive=True) == PAIN001_C14N


@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_streamed_signature_verifies_with_signxml_and_ours(which):
    from signxml import XMLVerifier

    p = pki()
    key, cert = (p.key, p.cert) if which == "rsa" else (p.ec_key, p.ec_cert)
    document = stream_sign(PAIN001_C14N, key, cert)
    signature = etree.fromstring(document).find(
        f"{{{PAIN001_NS}}}CstmrCdtTrfInitn/{{{PAIN001_NS}}}SplmtryData/{{{PAIN001_NS}}}Envlp/{{{DS_NS}}}Signature"
    )
    assert signature is not None
    XMLVerifier().verify(document, x509_cert=cert.decode())
    assert verify_document(document, cert, source="pain001.xml") == PAIN001_C14N


@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_streamed_signature_passes_xmlsec1(tmp_path, which):
    p = pki()
    key, cert = (p.key, p.cert) if which == "rsa" else (p.ec_key, p.ec_cert)
    document = stream_sign(PAIN001_C14N, key, cert)
    assert xmlsec1_verify(tmp_path, document)
    assert xmlsec1_verify(tmp_path, document, "--pubkey-cert-pem", str(write(tmp_path, "cert.pem", cert)))
    altered = document.replace(b"200.00</InstdAmt>", b"900.00</InstdAmt>")
    assert not xmlsec1_verify(tmp_path, altered)


def test_streamed_signed_info_is_signed_in_its_document_c14n_form():
    document = stream_sign(PAIN001_C14N, pki().key, pki().cert)
    signed_info = etree.fromstring(document).find(f".//{{{DS_NS}}}SignedInfo")
    c14n = etree.tostring(signed_info, method="c14n", exclusive=True)
    assert c14n.startswith(f'<ds:SignedInfo xmlns:ds="{DS_NS}">'.encode())
    assert PAIN001_NS.encode() not in c14n  # the default namespace is not visibly used there
    value = base64.b64decode(etree.fromstring(document).findtext(f".//{{{DS_NS}}}SignatureValue"))
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    x509.load_pem_x509_certificate(pki().cert).public_key().verify(value, c14n, padding.PKCS1v15(), hashes.SHA256())


def test_wrong_digest_is_our_bug_and_a_wrong_document_digest_does_not_verify():
    signer = StreamingEnvelopedSigner(pki().key, pki().cert)
    with pytest.raises(OutboundFormatError):
        signer.signature_xml(b"short")
    slot = PAIN001_C14N.index(b"<Envlp>") + len(b"<Envlp>")
    bad = PAIN001_C14N[:slot] + signer.signature_xml(hashlib.sha256(b"other").digest()) + PAIN001_C14N[slot:]
    with pytest.raises(SignatureInvalid):
        verify_document(bad, pki().cert, source="pain001.xml")


def test_key_and_certificate_must_belong_together():
    with pytest.raises(FormatError, match="does not belong"):
        StreamingEnvelopedSigner(pki().key, pki().other_cert)


# --------------------------------------------------------------------------- whole-document signing


PLACEMENT = [
    ("existing slot", PAIN002.replace(b"</CstmrPmtStsRpt>", b"<SplmtryData><Envlp/></SplmtryData></CstmrPmtStsRpt>"),
     False, "CstmrPmtStsRpt/SplmtryData/Envlp"),
    ("slot created", PAIN002, True, "CstmrPmtStsRpt/SplmtryData/Envlp"),
    ("no slot: under the root", PAIN002, False, ""),
    ("not ISO: under the root", b"<camt><x>1</x><y>2</y></camt>", False, ""),
]


@pytest.mark.parametrize("case, document, create, where", PLACEMENT, ids=[p[0] for p in PLACEMENT])
def test_sign_document_places_the_signature_and_verifies(case, document, create, where):
    signed = sign_document(document, pki().key, pki().cert, create_slot=create)
    root = etree.fromstring(signed)
    signature = root.find(f".//{{{DS_NS}}}Signature")
    path = []
    node = signature.getparent()
    while node is not root:
        path.append(etree.QName(node).localname)
        node = node.getparent()
    assert "/".join(reversed(path)) == where
    signed_content = verify_document(signed, pki().cert, source="in.xml")
    assert b"Signature" not in signed_content


@pytest.mark.parametrize("case, document, create, where", PLACEMENT, ids=[p[0] for p in PLACEMENT])
def test_xmlsec1_verifies_each_placement(tmp_path, case, document, create, where):
    assert xmlsec1_verify(tmp_path, sign_document(document, pki().key, pki().cert, create_slot=create))


def test_xmlsec1_verifies_signed_pain002_against_the_cert(tmp_path):
    cert = write(tmp_path, "cert.pem", pki().cert)
    assert xmlsec1_verify(tmp_path, signed_pain002(), "--pubkey-cert-pem", str(cert))
    assert not xmlsec1_verify(tmp_path, signed_pain002().replace(b"RJCT", b"ACSC"), "--pubkey-cert-pem", str(cert))


def test_signing_a_broken_document_is_our_bug():
    with pytest.raises(OutboundFormatError):
        sign_document(b"<Document><oops></Document>", pki().key, pki().cert)


# --------------------------------------------------------------------------- refusals


def _drop_signature(document: bytes) -> bytes:
    root = etree.fromstring(document)
    signature = root.find(f".//{{{DS_NS}}}Signature")
    signature.getparent().remove(signature)
    return etree.tostring(root)


def _strip_key_info(document: bytes) -> bytes:
    root = etree.fromstring(document)
    key_info = root.find(f".//{{{DS_NS}}}KeyInfo")
    key_info.getparent().remove(key_info)
    return etree.tostring(root)


def _inject_second_message(document: bytes) -> bytes:
    """XSW 1: an unsigned message beside the signed one; a naive reader takes the first."""
    root = etree.fromstring(document)
    evil = etree.fromstring(etree.tostring(root[0]))
    for status in evil.iter(f"{{{PAIN002_NS}}}TxSts"):
        status.text = "ACSC"
    for envelope in evil.iter(f"{{{PAIN002_NS}}}SplmtryData"):
        evil.remove(envelope)
    root.insert(0, evil)
    return etree.tostring(root)


def _wrap_signed_document(document: bytes) -> bytes:
    """XSW 2: a new root with an evil message; the signed original hidden in a wrapper below it."""
    original = etree.fromstring(document)
    outer = etree.Element(f"{{{PAIN002_NS}}}Document", nsmap={None: PAIN002_NS})
    evil = etree.SubElement(outer, f"{{{PAIN002_NS}}}CstmrPmtStsRpt")
    etree.SubElement(etree.SubElement(evil, f"{{{PAIN002_NS}}}GrpHdr"), f"{{{PAIN002_NS}}}MsgId").text = "EVIL"
    supplementary = etree.SubElement(evil, f"{{{PAIN002_NS}}}SplmtryData")
    etree.SubElement(supplementary, f"{{{PAIN002_NS}}}Envlp").append(original)
    return etree.tostring(outer)


def _original_hidden_in_object(document: bytes) -> bytes:
    """XSW 3: the signature keeps its place; the original message is hidden in a ds:Object."""
    root = etree.fromstring(document)
    signature = root.find(f".//{{{DS_NS}}}Signature")
    hidden = etree.SubElement(signature, f"{{{DS_NS}}}Object")
    hidden.append(etree.fromstring(etree.tostring(root[0])))
    for status in root[0].iter(f"{{{PAIN002_NS}}}TxSts"):
        status.text = "ACSC"
    return etree.tostring(root)


def _signature_moved_to_other_document(document: bytes) -> bytes:
    """The signature of one report pasted into another report's slot."""
    signature = etree.fromstring(document).find(f".//{{{DS_NS}}}Signature")
    other = etree.fromstring(sign_document(PAIN002.replace(b"BANK-RPT-1", b"BANK-RPT-2"), pki().key, pki().cert,
                                           create_slot=True))
    mine = other.find(f".//{{{DS_NS}}}Signature")
    mine.getparent().replace(mine, signature)
    return etree.tostring(other)


def _id_reference_covering_only_the_header(document: bytes) -> bytes:
    """Signed by the pinned key, but the Reference covers one node (#hdr), not the whole document."""
    from signxml import XMLSigner

    root = etree.fromstring(PAIN002.replace(b"<GrpHdr>", b'<GrpHdr Id="hdr">'))
    signed = XMLSigner(c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#").sign(
        root, key=pki().key, cert=pki().cert.decode(), reference_uri="#hdr")
    for status in signed.iter(f"{{{PAIN002_NS}}}TxSts"):
        status.text = "ACSC"  # not covered by the signature
    return etree.tostring(signed)


def _two_signatures(document: bytes) -> bytes:
    root = etree.fromstring(document)
    signature = root.find(f".//{{{DS_NS}}}Signature")
    root.append(etree.fromstring(etree.tostring(signature)))
    return etree.tostring(root)


def _cut_inside_signature_value(document: bytes) -> bytes:
    return document[: document.index(b"</ds:SignatureValue>") - 3]


# case, tamper, error, field, where: the error names the line of the ``where``-th occurrence
# (0 = first, -1 = last) of the bytes in the tampered document: the offending element
REFUSALS = [
    ("unsigned", _drop_signature, Unsigned, "ds:Signature", (b"<Envlp", 0)),
    ("status altered", lambda d: d.replace(b"RJCT", b"ACSC"), SignatureInvalid, "ds:DigestValue",
     (b"<ds:DigestValue>", 0)),
    ("message id altered", lambda d: d.replace(b"BANK-RPT-1", b"BANK-RPT-9"), SignatureInvalid, "ds:DigestValue",
     (b"<ds:DigestValue>", 0)),
    ("signature value altered", lambda d: d.replace(b"<ds:SignatureValue>", b"<ds:SignatureValue>AAAA"),
     SignatureInvalid, "ds:SignatureValue", (b"<ds:SignatureValue>", 0)),
    ("other key", lambda d: sign_document(PAIN002, pki().other_key, pki().other_cert, create_slot=True),
     UnknownSigner, "signer", (b"<ds:X509Certificate>", 0)),
    ("other key, KeyInfo removed", lambda d: _strip_key_info(
        sign_document(PAIN002, pki().other_key, pki().other_cert, create_slot=True)), SignatureInvalid,
     "ds:SignatureValue", (b"<ds:SignatureValue>", 0)),
    ("XSW: second message beside", _inject_second_message, SignatureWrapping, "Document/CstmrPmtStsRpt",
     (b"<CstmrPmtStsRpt>", 0)),
    ("XSW: signed document wrapped", _wrap_signed_document, SignatureWrapping, "ds:Signature",
     (b"<ds:Signature", 0)),
    ("XSW: original in ds:Object", _original_hidden_in_object, SignatureWrapping, "ds:Signature",
     (b"<ds:Signature", -1)),  # the copy of the message in the ds:Object brings a second signature
    ("XSW: Id reference to one node", _id_reference_covering_only_the_header, SignatureWrapping,
     "ds:Reference URI", (b"<ds:Reference", 0)),
    ("two signatures", _two_signatures, SignatureWrapping, "ds:Signature", (b"<ds:Signature", -1)),
    ("signature moved to another document", _signature_moved_to_other_document, SignatureInvalid,
     "ds:DigestValue", (b"<ds:DigestValue>", 0)),
    ("DTD", lambda d: b'<!DOCTYPE d [<!ENTITY x "y">]>' + _drop_signature(d), HostileInput, "DOCTYPE",
     (b"<!DOCTYPE", 0)),
    ("truncated", _cut_inside_signature_value, MalformedInput, "SignatureValue", (b"<ds:SignatureValue>", 0)),
]


def _line_of(document: bytes, marker: bytes, which: int) -> int:
    at = document.index(marker) if which == 0 else document.rindex(marker)
    return document.count(b"\n", 0, at) + 1


@pytest.mark.parametrize("case, tamper, error, field, where", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_each_have_their_own_error_naming_file_line_and_field(case, tamper, error, field, where):
    document = tamper(signed_pain002())
    start = time.perf_counter()
    with pytest.raises(error) as caught:
        verify_document(document, pki().cert, source="ICBC/pain002.xml")
    assert time.perf_counter() - start < 2.0
    assert type(caught.value) is error, caught.value
    err = caught.value
    assert (err.source, err.field, err.line) == ("ICBC/pain002.xml", field, _line_of(document, *where)), err
    assert str(err).startswith(f"ICBC/pain002.xml:{err.line}: {field}")


def test_returned_bytes_are_the_signed_content_not_the_input():
    content = verify_document(signed_pain002(), pki().cert, source="x")
    reparsed = etree.fromstring(content)
    assert reparsed.find(f".//{{{DS_NS}}}Signature") is None
    assert [s.text for s in reparsed.iter(f"{{{PAIN002_NS}}}TxSts")] == ["ACSC", "RJCT"]


def test_expired_pinned_certificate_is_refused_when_a_time_is_given():
    import datetime as dt

    with pytest.raises(SignatureInvalid):
        verify_document(signed_pain002(), pki().cert, source="x", at=dt.datetime(2150, 1, 1, tzinfo=dt.timezone.utc))
    verify_document(signed_pain002(), pki().cert, source="x", at=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))


# --------------------------------------------------------------------------- properties

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)


@settings(max_examples=25, deadline=None)
@given(msg_id=_text, name=_text)
def test_random_content_signs_and_verifies(msg_id, name):
    root = etree.fromstring(PAIN002)
    root.find(f".//{{{PAIN002_NS}}}MsgId").text = msg_id
    etree.SubElement(root.find(f".//{{{PAIN002_NS}}}GrpHdr"), f"{{{PAIN002_NS}}}Nm").text = name
    signed = sign_document(etree.tostring(root), pki().key, pki().cert, create_slot=True)
    content = etree.fromstring(verify_document(signed, pki().cert, source="x"))
    assert content.findtext(f".//{{{PAIN002_NS}}}MsgId") == msg_id
    assert content.findtext(f".//{{{PAIN002_NS}}}Nm") == name


@settings(max_examples=200, deadline=None)
@given(document=st.binary(max_size=300))
def test_any_bytes_as_document_give_a_format_error(document):
    with pytest.raises(FormatError):
        verify_document(document, pki().cert, source="x")


@settings(max_examples=100, deadline=None)
@given(field=st.sampled_from(["SignatureValue", "DigestValue", "X509Certificate", "SignatureMethod",
                              "DigestMethod", "Transform"]),
       junk=_text)
def test_any_junk_inside_the_signature_gives_a_format_error(field, junk):
    root = etree.fromstring(signed_pain002())
    target = root.find(f".//{{{DS_NS}}}{field}")
    if field.endswith("Method") or field == "Transform":
        target.set("Algorithm", junk)
    else:
        target.text = junk
    with pytest.raises(FormatError):
        verify_document(etree.tostring(root), pki().cert, source="x")
