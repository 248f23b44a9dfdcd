"""Enveloped XML signatures (XMLDSig) over whole ISO 20022 documents.

Every signature made or accepted here has exactly one ``Reference URI=""`` (the whole document)
with the transforms enveloped-signature + exclusive c14n, SHA-256 digests and RSA-SHA256 (or
ECDSA-SHA256) over the exclusive-c14n ``SignedInfo``. Inside an ISO 20022 document the
``ds:Signature`` sits in the message's ``SplmtryData/Envlp`` (the only place the XSDs allow it).

* :class:`StreamingEnvelopedSigner` — for documents written as a stream (pain.001): the writer
  digests the document bytes itself and asks for the ``ds:Signature`` element bytes.
* :func:`sign_document` — small documents held whole (bank simulator: pain.002, camt), via signxml.
* :func:`verify_document` — verification against one pinned certificate only; returns the
  *signed* bytes, which are the only thing a caller may process.

>>> from formats.signature.keys import make_test_ca, make_leaf
>>> ca_key, ca_cert = make_test_ca("CA")
>>> key, cert = make_leaf(ca_key, ca_cert, "bank")
>>> doc = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt><GrpHdr><MsgId>M1</MsgId></GrpHdr></CstmrPmtStsRpt></Document>'
>>> signed = sign_document(doc, key, cert, create_slot=True)
>>> b"<SplmtryData><Envlp><ds:Signature" in signed
True
>>> verify_document(signed, cert, source="pain002.xml")
b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt><GrpHdr><MsgId>M1</MsgId></GrpHdr><SplmtryData><Envlp></Envlp></SplmtryData></CstmrPmtStsRpt></Document>'
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from lxml import etree

from formats.errors import (
    FormatError,
    OutboundFormatError,
    SignatureInvalid,
    SignatureWrapping,
    Unsigned,
    UnknownSigner,
    UnsupportedMessage,
)
from formats.xmlsafe import DEFAULT_MAX_SMALL_BYTES, safe_fromstring

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

#: Transforms a Reference may name; anything else (XPath, XSLT) is refused.
_ALLOWED_TRANSFORMS = {
    ENVELOPED,
    EXC_C14N,
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/2006/12/xml-c14n11",
}
_SIGNATURE_CHILDREN = {"SignedInfo", "SignatureValue", "KeyInfo"}


def _ds(name: str) -> str:
    return f"{{{DS_NS}}}{name}"


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


@functools.lru_cache(maxsize=8)  # loading an RSA key checks it: dearer than signing one file
def _load_key(key_pem: bytes):
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise FormatError(f"signing key is not an unencrypted PEM private key: {exc}", field="key") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise FormatError(f"unsupported signing key type {type(key).__name__}", field="key")
    return key


def _load_cert(cert: bytes, *, what: str) -> x509.Certificate:
    try:
        if b"-----BEGIN" in cert:
            return x509.load_pem_x509_certificate(cert)
        return x509.load_der_x509_certificate(cert)
    except (ValueError, TypeError) as exc:
        raise FormatError(f"{what} is not a PEM or DER X.509 certificate: {exc}", field=what) from None


# --------------------------------------------------------------------------- streaming signer


class StreamingEnvelopedSigner:
    """Makes the ``ds:Signature`` element for a document whose digest the caller computed.

    The caller writes the document in exclusive-c14n form with an *empty*
    ``<SplmtryData><Envlp></Envlp></SplmtryData>`` slot, and digests (SHA-256) every byte of
    the root element — not the XML declaration nor the line break after it — exactly as they
    would be with the signature left out. The bytes returned by :meth:`signature_xml` then go
    between ``<Envlp>`` and ``</Envlp>``, with nothing else added. That is what the
    enveloped-signature + exc-c14n transforms recompute on the verifying side.

    :param key_pem: private key (PEM, unencrypted), RSA (rsa-sha256) or EC (ecdsa-sha256).
    :param cert_pem: the signer's certificate, put into ``KeyInfo/X509Data``.
    :raises FormatError: unusable key or certificate, or key and certificate do not belong together.
    """

    def __init__(self, key_pem: bytes, cert_pem: bytes) -> None:
        self._key = _load_key(key_pem)
        cert = _load_cert(cert_pem, what="cert")
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if cert.public_key().public_bytes(*spki) != self._key.public_key().public_bytes(*spki):
            raise FormatError("the certificate does not belong to the signing key", field="cert")
        self._cert_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
        self._method = RSA_SHA256 if isinstance(self._key, rsa.RSAPrivateKey) else ECDSA_SHA256

    def _signed_info_content(self, document_digest: bytes) -> str:
        digest_b64 = base64.b64encode(document_digest).decode("ascii")
        return (
            f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod>'
            f'<ds:SignatureMethod Algorithm="{self._method}"></ds:SignatureMethod>'
            '<ds:Reference URI="">'
            "<ds:Transforms>"
            f'<ds:Transform Algorithm="{ENVELOPED}"></ds:Transform>'
            f'<ds:Transform Algorithm="{EXC_C14N}"></ds:Transform>'
            "</ds:Transforms>"
            f'<ds:DigestMethod Algorithm="{SHA256}"></ds:DigestMethod>'
            f"<ds:DigestValue>{digest_b64}</ds:DigestValue>"
            "</ds:Reference>"
        )

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = utils.decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        size = (self._key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # XMLDSig wants raw r||s

    def signature_xml(self, document_digest: bytes) -> bytes:
        """The complete ``<ds:Signature xmlns:ds=…>…</ds:Signature>`` element, UTF-8 bytes.

        :param document_digest: SHA-256 (32 bytes) of the exc-c14n document without the signature.
        :raises OutboundFormatError: the digest is not 32 bytes (our bug).
        """
        if not isinstance(document_digest, (bytes, bytearray)) or len(document_digest) != 32:
            raise OutboundFormatError("document_digest must be the 32-byte SHA-256 digest",
                                      field="document_digest", value=document_digest)
        content = self._signed_info_content(bytes(document_digest))
        # Canonicalised on its own, SignedInfo carries the ds declaration it inherits in the document.
        signed_info_c14n = f'<ds:SignedInfo xmlns:ds="{DS_NS}">{content}</ds:SignedInfo>'.encode("utf-8")
        value = base64.b64encode(self._sign(signed_info_c14n)).decode("ascii")
        element = (
            f'<ds:Signature xmlns:ds="{DS_NS}">'
            f"<ds:SignedInfo>{content}</ds:SignedInfo>"
            f"<ds:SignatureValue>{value}</ds:SignatureValue>"
            f"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{self._cert_b64}</ds:X509Certificate>"
            "</ds:X509Data></ds:KeyInfo>"
            "</ds:Signature>"
        ).encode("utf-8")
        self._check_c14n(element, signed_info_c14n)
        return element

    @staticmethod
    def _check_c14n(element: bytes, signed_info_c14n: bytes) -> None:
        """What we signed must be exactly what a verifier canonicalises (a cheap self-check)."""
        signature = etree.fromstring(element)
        again = etree.tostring(signature.find(_ds("SignedInfo")), method="c14n", exclusive=True)
        if again != signed_info_c14n:  # pragma: no cover - guards against a future edit of the template
            raise OutboundFormatError("SignedInfo is not in exclusive c14n form", field="SignedInfo")


def enveloped_digest(c14n_document: bytes) -> bytes:
    """SHA-256 of a whole exc-c14n document with an empty signature slot (small documents, tests)."""
    return hashlib.sha256(c14n_document).digest()


# --------------------------------------------------------------------------- whole-document signing


def _find_envelope(root: etree._Element, *, create: bool) -> etree._Element | None:
    """``<message>/SplmtryData/Envlp`` under the root, made when asked and absent."""
    message = next((child for child in root if isinstance(child.tag, str)), None)
    if message is None:
        return None
    for supplementary in message:
        if _local(supplementary.tag) == "SplmtryData":
            for envelope in supplementary:
                if _local(envelope.tag) == "Envlp":
                    return envelope
    if not create:
        return None
    ns = etree.QName(message).namespace
    qualify = (lambda name: f"{{{ns}}}{name}") if ns else (lambda name: name)
    supplementary = etree.SubElement(message, qualify("SplmtryData"))
    return etree.SubElement(supplementary, qualify("Envlp"))


def sign_document(xml_bytes: bytes, key_pem: bytes, cert_pem: bytes, *, create_slot: bool = False) -> bytes:
    """Sign a small document held whole with an enveloped signature (via signxml).

    The ``ds:Signature`` goes into ``<message>/SplmtryData/Envlp`` when the document has that
    slot (or ``create_slot`` is true: the slot is then appended as the message element's last
    child), otherwise it is appended to the root element.

    :param xml_bytes: the document (UTF-8); produced by us, so a bad one is an OutboundFormatError.
    :returns: the signed document, UTF-8 with an XML declaration.
    :raises OutboundFormatError: the document is not well-formed or cannot be signed.
    :raises FormatError: unusable key or certificate.
    """
    from signxml import SignatureConstructionMethod, XMLSigner
    from signxml.exceptions import SignXMLException

    key = _load_key(key_pem)
    _load_cert(cert_pem, what="cert")
    try:
        root = safe_fromstring(xml_bytes, source="<document to sign>")
    except FormatError as exc:
        raise OutboundFormatError(f"cannot sign: {exc.message}", source=exc.source, line=exc.line) from None
    envelope = _find_envelope(root, create=create_slot)
    if envelope is not None:
        etree.SubElement(envelope, _ds("Signature"), {"Id": "placeholder"}, nsmap={"ds": DS_NS})
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm="rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else "ecdsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm=EXC_C14N,
    )
    try:
        signed = signer.sign(root, key=key, cert=cert_pem.decode("ascii") if b"-----BEGIN" in cert_pem else
                             x509.load_der_x509_certificate(cert_pem).public_bytes(serialization.Encoding.PEM).decode())
    except (SignXMLException, ValueError, TypeError) as exc:
        raise OutboundFormatError(f"cannot sign: {exc}") from None
    references = signed.findall(f".//{_ds('Reference')}")
    if [r.get("URI") for r in references] != [""]:
        raise OutboundFormatError("signature must have one Reference URI='' (does the root carry an Id?)",
                                  field="Reference")
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


# --------------------------------------------------------------------------- verification


def _check_placement(root: etree._Element, signature: etree._Element, *, source: str) -> None:
    """The signature sits where we put signatures, and the ISO document has one message."""
    parent = signature.getparent()
    path = []
    node = parent
    while node is not None:
        path.append(_local(node.tag))
        node = node.getparent()
    path.reverse()  # root first
    in_envelope = len(path) == 4 and path[2:] == ["SplmtryData", "Envlp"]
    if not (parent is root or in_envelope):
        raise SignatureWrapping(
            f"ds:Signature at /{'/'.join(path)}, expected in <message>/SplmtryData/Envlp or under the root",
            source=source, field="ds:Signature", line=signature.sourceline,
        )
    if _local(root.tag) == "Document":
        messages = [c for c in root if isinstance(c.tag, str) and c is not signature]
        if len(messages) != 1:
            # the offending element: a message the signature is not in (or the empty Document)
            unsigned = next((m for m in messages if signature not in m.iter()), root)
            raise SignatureWrapping(f"Document holds {len(messages)} message elements, expected exactly one",
                                    source=source, field="Document" if unsigned is root else f"Document/{_local(unsigned.tag)}",
                                    line=unsigned.sourceline)
        if in_envelope and signature.getparent().getparent().getparent() is not messages[0]:
            raise SignatureWrapping("ds:Signature is not in the document's message", source=source,
                                    field="ds:Signature",
                                    line=signature.sourceline)  # pragma: no cover - implied by the path check


def _check_signature_shape(signature: etree._Element, *, source: str) -> None:
    """One whole-document Reference, known transforms, nothing extra (no ds:Object to hide data in)."""
    extra = [c for c in signature if isinstance(c.tag, str) and
             (etree.QName(c).namespace != DS_NS or _local(c.tag) not in _SIGNATURE_CHILDREN)]
    if extra:
        names = ", ".join(_local(c.tag) for c in extra)
        raise SignatureWrapping(f"unexpected elements in ds:Signature: {names}", source=source,
                                field=f"ds:Signature/{_local(extra[0].tag)}", line=extra[0].sourceline)
    references = signature.findall(f"{_ds('SignedInfo')}/{_ds('Reference')}")
    if len(references) != 1:
        where = references[1] if references else signature.find(_ds("SignedInfo"))
        raise SignatureWrapping(f"expected exactly one Reference, found {len(references)}", source=source,
                                field="ds:Reference", line=(where if where is not None else signature).sourceline)
    uri = references[0].get("URI")
    if uri != "":
        raise SignatureWrapping(f"the Reference must cover the whole document (URI=''), not {uri!r}",
                                source=source, field="ds:Reference URI", value=uri, line=references[0].sourceline)
    transforms = [t.get("Algorithm") for t in references[0].iter(_ds("Transform"))]
    refused = [t for t in references[0].iter(_ds("Transform")) if t.get("Algorithm") not in _ALLOWED_TRANSFORMS]
    if ENVELOPED not in transforms or refused:
        raise UnsupportedMessage(f"Reference transforms {transforms} are not enveloped-signature + c14n",
                                 source=source, field="ds:Transform Algorithm",
                                 value=refused[0].get("Algorithm") if refused else None,
                                 line=(refused[0] if refused else references[0]).sourceline)


def _check_key_info(signature: etree._Element, pinned: x509.Certificate, *, source: str) -> None:
    """Certificates in KeyInfo are never trusted, but one that is not the pinned key names an unknown signer."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    pinned_key = pinned.public_key().public_bytes(*spki)
    subjects = []
    for element in signature.iter(_ds("X509Certificate")):
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode("".join((element.text or "").split())))
        except ValueError:
            raise SignatureInvalid("KeyInfo holds a certificate that cannot be read", source=source,
                                   field="ds:X509Certificate", line=element.sourceline) from None
        if cert.public_key().public_bytes(*spki) == pinned_key:
            return
        subjects.append((cert.subject.rfc4514_string(), element.sourceline))
    if subjects:
        subject, line = subjects[0]
        raise UnknownSigner(f"signed by {subject!r}, not the pinned {pinned.subject.rfc4514_string()!r}",
                            source=source, field="signer", value=subject, line=line)


def verify_document(
    xml_bytes: bytes,
    pinned_cert_pem: bytes,
    *,
    source: str,
    at: dt.datetime | None = None,
    max_bytes: int = DEFAULT_MAX_SMALL_BYTES,
) -> bytes:
    """Verify an enveloped signature against the pinned certificate; return the signed bytes.

    The returned bytes are the exc-c14n document with the signature removed — exactly what the
    signature covers. Process those, never the input: that is what defeats signature wrapping.

    :param xml_bytes: the received document.
    :param pinned_cert_pem: the one certificate allowed to have signed (PEM or DER).
    :param source: the file's name, for errors.
    :param at: when given, the pinned certificate must be valid at that time; when ``None`` its
        validity period is not checked (this module reads no clock).
    :raises HostileInput, MalformedInput: from the hardened parser.
    :raises Unsigned: no ``ds:Signature``.
    :raises SignatureWrapping: more than one signature, a signature in the wrong place, a second
        message, extra content in the signature, or a Reference that does not cover the document.
    :raises UnsupportedMessage: transforms or algorithms we do not accept.
    :raises UnknownSigner: KeyInfo names a certificate that is not the pinned one.
    :raises SignatureInvalid: the signature or the content does not verify.
    """
    from signxml import XMLVerifier
    from signxml.algorithms import DigestAlgorithm, SignatureMethod
    from signxml.exceptions import InvalidDigest, InvalidInput, SignXMLException
    from signxml.verifier import SignatureConfiguration

    pinned = _load_cert(pinned_cert_pem, what="pinned_cert")
    root = safe_fromstring(xml_bytes, source=source, max_bytes=max_bytes)
    signatures = list(root.iter(_ds("Signature")))
    if not signatures:
        envelope = _find_envelope(root, create=False)  # where the signature belongs, if there is a slot
        raise Unsigned("the document carries no ds:Signature", source=source, field="ds:Signature",
                       line=(envelope if envelope is not None else root).sourceline)
    if len(signatures) > 1:
        raise SignatureWrapping(f"expected one ds:Signature, found {len(signatures)}", source=source,
                                field="ds:Signature", line=signatures[1].sourceline)
    signature = signatures[0]
    _check_placement(root, signature, source=source)
    _check_signature_shape(signature, source=source)
    _check_key_info(signature, pinned, source=source)

    config = SignatureConfiguration(
        expect_references=1,
        signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256,
                                     SignatureMethod.RSA_SHA512, SignatureMethod.ECDSA_SHA512}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA512}),
        verification_time=at if at is not None else pinned.not_valid_before_utc,
    )
    def line_of(name: str) -> int | None:
        element = signature.find(f".//{_ds(name)}")
        return (element if element is not None else signature).sourceline

    try:
        result = XMLVerifier().verify(etree.tostring(root), x509_cert=pinned, expect_config=config)
    except InvalidDigest as exc:
        raise SignatureInvalid(f"content does not match the signature (altered?): {exc}", source=source,
                               field="ds:DigestValue", line=line_of("DigestValue")) from None
    except InvalidInput as exc:
        raise SignatureInvalid(f"signature not acceptable: {exc}", source=source, field="ds:Signature",
                               line=signature.sourceline) from None
    except SignXMLException as exc:
        raise SignatureInvalid(f"signature does not verify with the pinned certificate: {exc}",
                               source=source, field="ds:SignatureValue", line=line_of("SignatureValue")) from None
    except Exception as exc:  # noqa: BLE001 - hostile input must only ever produce FormatError
        raise SignatureInvalid(f"signature cannot be checked: {type(exc).__name__}: {exc}", source=source,
                               field="ds:Signature", line=signature.sourceline) from None
    return result.signed_data
