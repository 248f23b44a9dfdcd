"""Signatures on files exchanged with partner banks; which scheme a bank uses is config.

Two faces, by where the signature lives:

* detached (``"cms"``, ``"sm2"``): the signature is a separate file beside the content.
  ``sign(chunks, key, cert_or_pub, **kw) -> bytes`` and
  ``verify(chunks, signature, pinned, *, source, **kw) -> None`` (raises on refusal).
* enveloped (``"xmldsig"``): the signature is inside the XML document.
  ``sign(document, key, cert, **kw) -> bytes`` and
  ``verify(document, pinned, *, source, **kw) -> bytes`` (the signed content to process).

Keys and certificates are loaded by the caller and passed as bytes: PEM for cms/xmldsig,
gmssl hex (``str`` or ASCII ``bytes``) for sm2. Every refusal is a
:class:`formats.errors.SignatureError` (Unsigned, SignatureInvalid, UnknownSigner,
SignatureWrapping) or another :class:`formats.errors.InboundFormatError`.

>>> from formats.signature.keys import make_sm2_keypair
>>> scheme = get_scheme("sm2")
>>> private_hex, public_hex = make_sm2_keypair()
>>> sig = scheme.sign([b"file ", b"bytes"], private_hex, public_hex)
>>> scheme.verify([b"file bytes"], sig, public_hex, source="f.txt")
>>> scheme.kind, sorted(SCHEMES)
('detached', ['cms', 'sm2', 'xmldsig'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Union

from formats.errors import FormatError
from formats.signature import cms, sm2, xmldsig


@dataclass(frozen=True)
class DetachedScheme:
    """A signature kept in its own file; the content is streamed as chunks."""

    name: str
    sign_function: Callable[..., bytes]
    verify_function: Callable[..., object]
    kind: str = "detached"

    def sign(self, chunks: Iterable[bytes], key, cert_or_pub, **kw) -> bytes:
        """Sign the content; ``cms`` needs ``signing_time=``, ``sm2`` takes ``user_id=``."""
        return self.sign_function(chunks, key, cert_or_pub, **kw)

    def verify(self, chunks: Iterable[bytes], signature: bytes | None, pinned, *, source: str, **kw) -> None:
        """Return if ``signature`` over ``chunks`` is good for ``pinned``; raise a FormatError otherwise."""
        self.verify_function(chunks, signature, pinned, source=source, **kw)


@dataclass(frozen=True)
class EnvelopedScheme:
    """A signature inside the (small, whole) XML document it signs."""

    name: str
    sign_function: Callable[..., bytes]
    verify_function: Callable[..., bytes]
    kind: str = "enveloped"

    def sign(self, document: bytes, key: bytes, cert: bytes, **kw) -> bytes:
        """The signed document (``create_slot=True`` adds a SplmtryData/Envlp slot)."""
        return self.sign_function(document, key, cert, **kw)

    def verify(self, document: bytes, pinned: bytes, *, source: str, **kw) -> bytes:
        """The signed content bytes, the only thing to process; raises a FormatError on refusal."""
        return self.verify_function(document, pinned, source=source, **kw)


SignatureScheme = Union[DetachedScheme, EnvelopedScheme]

SCHEMES: dict[str, SignatureScheme] = {
    "cms": DetachedScheme("cms", cms.sign_detached, cms.verify_detached),
    "sm2": DetachedScheme("sm2", sm2.sm2_sign_detached, sm2.sm2_verify_detached),
    "xmldsig": EnvelopedScheme("xmldsig", xmldsig.sign_document, xmldsig.verify_document),
}


def get_scheme(name: str) -> SignatureScheme:
    """The scheme called ``name`` (``"cms"``, ``"sm2"``, ``"xmldsig"``).

    :raises FormatError: no such scheme (a configuration error), naming the known ones.
    """
    try:
        return SCHEMES[name]
    except (KeyError, TypeError):
        raise FormatError(
            f"unknown signature scheme {name!r}; known: {', '.join(sorted(SCHEMES))}", field="scheme", value=name
        ) from None


__all__ = ["DetachedScheme", "EnvelopedScheme", "SignatureScheme", "SCHEMES", "get_scheme"]
