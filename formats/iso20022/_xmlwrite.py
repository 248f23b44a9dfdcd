"""Writing ISO 20022 XML directly as bytes in exclusive canonical form (exc-c14n).

Every writer in this package produces, after the XML declaration, exactly the bytes that
``etree.tostring(doc, method="c14n", exclusive=True)`` would give: no self-closing tags, the
only namespace declaration on the root ``Document``, c14n text escaping, no whitespace between
elements. That lets a streaming writer compute an enveloped XML signature's digest while it
writes (see :class:`CanonicalWriter`), and keeps memory flat: text is joined in small buffers
and flushed to the output.

Values are checked as they are written: an empty or too long text, a character XML cannot
carry or a bad amount raises :class:`OutboundFormatError` naming the field — it is our data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO, Protocol

from formats.errors import OutboundFormatError
from formats.money import format_yuan

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
ISO_NS = "urn:iso:std:iso:20022:tech:xsd:"

_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: a character XML cannot carry (what :func:`text` refuses)
NOT_XML_CHAR = _NOT_XML_CHAR
#: that, or one :func:`esc` changes (``&``, ``<``, ``>``, CR)
NOT_PLAIN_CHAR = re.compile("[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: ``str()`` of a Decimal with exactly two places, not negative, at most 19 characters: then
#: ``str(value)`` is what ``format_yuan(value)`` gives
PLAIN_YUAN = re.compile(r"\d{1,16}\.\d\d")
_FLUSH_AT = 256 * 1024


class EnvelopedSigner(Protocol):
    """What a writer needs from ``formats.signature.xmldsig.StreamingEnvelopedSigner``."""

    def signature_xml(self, document_digest: bytes) -> bytes:  # pragma: no cover - protocol
        ...


@dataclass(frozen=True)
class WriteResult:
    """What a writer wrote: counts and sums it checked, bytes written, and the signed digest."""

    message_type: str
    number_of_transactions: int
    control_sum: Decimal
    bytes_written: int
    signed: bool = False
    document_digest: bytes | None = None


def esc(text: str) -> str:
    """c14n text-node escaping (``&``, ``<``, ``>``, CR)."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#xD;")
    return text


def esc_attr(text: str) -> str:
    """c14n attribute-value escaping."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
        .replace("\t", "&#x9;").replace("\n", "&#xA;").replace("\r", "&#xD;")
    )


def text(field: str, value: object, max_len: int, *, line: int | None = None) -> str:
    """Check that ``value`` is a 1..``max_len`` character string XML can carry; return it escaped."""
    if type(value) is str and 0 < len(value) <= max_len and not value.isspace():
        if not NOT_PLAIN_CHAR.search(value):
            return value  # the common case: nothing to refuse or escape; the checks below name what is wrong
        if not _NOT_XML_CHAR.search(value):
            return esc(value)
    if not isinstance(value, str):
        raise OutboundFormatError(f"{field} must be text", field=field, value=value, line=line)
    if not value or len(value) > max_len:
        raise OutboundFormatError(f"{field} must be 1 to {max_len} characters", field=field, value=value, line=line)
    if value.strip() == "":
        raise OutboundFormatError(f"{field} must not be blank", field=field, value=value, line=line)
    if _NOT_XML_CHAR.search(value):
        raise OutboundFormatError(f"{field} holds a character XML cannot carry", field=field, value=value, line=line)
    return esc(value)


def amount(field: str, value: object, *, line: int | None = None, positive: bool = True) -> str:
    """A yuan ``Decimal`` as ``'123.45'``; refuses floats, more than 2 places, negatives (and zero)."""
    if type(value) is Decimal:  # the common case: exactly two places, plain notation, in range
        out = str(value)
        if PLAIN_YUAN.fullmatch(out) and (out != "0.00" or not positive):
            return out
    if not isinstance(value, Decimal):
        raise OutboundFormatError(f"{field} must be a Decimal", field=field, value=value, line=line)
    try:
        out = format_yuan(value)
    except (TypeError, ValueError) as exc:
        raise OutboundFormatError(f"{field}: {exc}", field=field, value=value, line=line) from None
    if value < 0 or (positive and value == 0):
        raise OutboundFormatError(f"{field} must be {'positive' if positive else 'not negative'}", field=field, value=value, line=line)
    if len(out) > 19:
        raise OutboundFormatError(f"{field} has too many digits", field=field, value=value, line=line)
    return out


def datetime_text(field: str, value: object) -> str:
    if not isinstance(value, dt.datetime):
        raise OutboundFormatError(f"{field} must be a datetime", field=field, value=value)
    if not 1 <= value.year <= 9999:  # pragma: no cover - datetime enforces it
        raise OutboundFormatError(f"{field} year out of range", field=field, value=value)
    return value.isoformat()


def date_text(field: str, value: object) -> str:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise OutboundFormatError(f"{field} must be a date", field=field, value=value)
    return value.isoformat()


class CanonicalWriter:
    """Buffered byte writer that optionally hashes everything after the XML declaration.

    ``write_declaration()`` first, then ``write(str)`` pieces. For a signed document, call
    :meth:`finish_signed` with the closing tags that follow ``<SplmtryData><Envlp>``: the digest
    of the enveloped-signature-transformed document is the hash of all body bytes plus
    ``</Envlp></SplmtryData>`` and ``closing``; the signature goes between.
    """

    def __init__(self, out: BinaryIO, *, hashing: bool = False) -> None:
        self._out = out
        self._buf: list[str] = []
        self._size = 0
        self._hash = hashlib.sha256() if hashing else None
        self.bytes_written = 0

    def write_declaration(self) -> None:
        self._out.write(XML_DECLARATION)
        self.bytes_written += len(XML_DECLARATION)

    def write(self, piece: str) -> None:
        self._buf.append(piece)
        self._size += len(piece)
        if self._size >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        data = "".join(self._buf).encode("utf-8")
        self._buf.clear()
        self._size = 0
        if self._hash is not None:
            self._hash.update(data)
        self._out.write(data)
        self.bytes_written += len(data)

    def finish(self, closing: str) -> None:
        self.write(closing)
        self.flush()

    def finish_signed(self, signer: EnvelopedSigner, closing: str) -> bytes:
        """Write ``<SplmtryData><Envlp>`` + signature + ``</Envlp></SplmtryData>`` + ``closing``.

        Returns the SHA-256 document digest that was signed.
        """
        assert self._hash is not None, "writer was not created with hashing=True"
        self.write("<SplmtryData><Envlp>")
        self.flush()
        suffix = ("</Envlp></SplmtryData>" + closing).encode("utf-8")
        digest_state = self._hash.copy()
        digest_state.update(suffix)
        digest = digest_state.digest()
        signature = signer.signature_xml(digest)
        if not isinstance(signature, (bytes, bytearray)) or not bytes(signature).lstrip().startswith(b"<"):
            raise OutboundFormatError("signer returned no XML signature", field="Signature", value=signature)
        self._out.write(signature)
        self._out.write(suffix)
        self.bytes_written += len(signature) + len(suffix)
        return digest


def ns_of(message_type: str) -> str:
    return ISO_NS + message_type


def party_account(tag: str, account: str, field: str) -> str:
    """``<tag><Id><Othr><Id>account</Id></Othr></Id></tag>``"""
    return f"<{tag}><Id><Othr><Id>{text(field, account, 34)}</Id></Othr></Id></{tag}>"


def agent_by_cnaps(tag: str, bank_code: str, field: str) -> str:
    """``<tag><FinInstnId><ClrSysMmbId><MmbId>code</MmbId></ClrSysMmbId></FinInstnId></tag>``"""
    return f"<{tag}><FinInstnId><ClrSysMmbId><MmbId>{text(field, bank_code, 35)}</MmbId></ClrSysMmbId></FinInstnId></{tag}>"
