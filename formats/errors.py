"""The error tree of ``formats``.

Every error is a ``ValueError`` and carries where the problem is (``source``, ``line``,
``field``) and what was there (``value``). Two branches keep blame clear:

* :class:`InboundFormatError` — the peer (a bank, a department) sent bad data.
* :class:`OutboundFormatError` — we produced bad data; this is our bug, never the bank's.

>>> e = ControlTotalMismatch("trailer count 3 but 2 detail records", source="r.txt", line=4, field="count", value="3")
>>> str(e)
"r.txt:4: count='3': trailer count 3 but 2 detail records"
>>> isinstance(e, InboundFormatError) and isinstance(e, ValueError)
True
"""

from __future__ import annotations


class FormatError(ValueError):
    """Root of every error raised by ``formats``."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.field = field
        self.value = value

    def where(self) -> str:
        """``source:line: field='value'`` — whatever parts are known."""
        parts = []
        loc = self.source or "<input>"
        if self.line is not None:
            loc += f":{self.line}"
        parts.append(loc)
        if self.field is not None:
            parts.append(f"{self.field}={self.value!r}" if self.value is not None else self.field)
        return ": ".join(parts)

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"

    def as_dict(self) -> dict:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "source": self.source,
            "line": self.line,
            "field": self.field,
            "value": None if self.value is None else str(self.value),
        }


class InboundFormatError(FormatError):
    """Data we received is not acceptable."""


class MalformedInput(InboundFormatError):
    """Not well-formed: bad XML, bad encoding, truncated file, wrong field shape."""


class HostileInput(InboundFormatError):
    """DTDs, entities, external references, size bombs: refused before any parsing work."""


class SchemaViolation(InboundFormatError):
    """Well-formed but breaks the XSD, the declared layout or a structural rule we rely on."""


class ControlTotalMismatch(InboundFormatError):
    """A declared count or sum disagrees with the records."""


class UnsupportedMessage(InboundFormatError):
    """A message type or version we do not read."""


class SignatureError(InboundFormatError):
    """Root of signature verification failures."""


class Unsigned(SignatureError):
    """No signature where one is required."""


class SignatureInvalid(SignatureError):
    """A signature is present but does not verify: the content or signature was altered."""


class UnknownSigner(SignatureError):
    """The signature verifies against a key that is not the pinned certificate."""


class SignatureWrapping(SignatureError):
    """The signed content is not the content that would be processed (XML signature wrapping)."""


class OutboundFormatError(FormatError):
    """We produced data that does not meet the format: a bug on our side."""
