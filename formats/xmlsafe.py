"""The one hardened XML parser configuration used by every codec in ``formats``.

Bank data is untrusted. Before lxml sees a byte, :class:`GuardedStream` checks it:

* the document must be UTF-8 (ISO 20022 requires it); a UTF-16/32 byte-order mark or an
  ``encoding=`` other than UTF-8 is refused, which also keeps the byte scan below sound;
* any ``<!DOCTYPE`` or ``<!ENTITY`` anywhere is refused as :class:`HostileInput` (billion
  laughs, XXE file and network entities, DTDs all need one of them);
* more than ``max_bytes`` bytes is refused as :class:`HostileInput`.

lxml itself then runs with ``resolve_entities=False, no_network=True, load_dtd=False,
dtd_validation=False, huge_tree=False``. Every lxml error becomes a :class:`MalformedInput`
(not well-formed, truncated) or :class:`SchemaViolation` (breaks the XSD), naming the
source and line. Nothing but :class:`FormatError` leaves this module for bad input.

>>> root = safe_fromstring(b"<a><b>1</b></a>", source="t.xml", max_bytes=1000)
>>> root.findtext("b")
'1'
>>> safe_fromstring(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', source="t.xml", max_bytes=1000)
Traceback (most recent call last):
...
formats.errors.HostileInput: t.xml:1: DOCTYPE='a': DOCTYPE and ENTITY declarations are refused
>>> safe_fromstring(b'<a><b>1', source="t.xml")   # cut short inside <b>
Traceback (most recent call last):
...
formats.errors.MalformedInput: t.xml:1: b: not well-formed XML: Premature end of data in tag b line 1, line 1, column 8
"""

from __future__ import annotations

import io
import re
from typing import BinaryIO, Iterable, Iterator

from lxml import etree

from formats.errors import FormatError, HostileInput, MalformedInput, SchemaViolation

#: Default limit for streamed bank files (a 1M-transaction pain.001 is about 0.7 GB).
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Default limit for documents parsed whole (acmt, small tests).
DEFAULT_MAX_SMALL_BYTES = 16 * 1024**2

_CHUNK = 64 * 1024
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DECLARED_NAME = re.compile(rb"\s+(?:%\s+)?([^\s\[\]<>\"'%;]{1,64})")
#: the element libxml2 names in an error: truncated inside it, start tag cut, tag mismatch, XSD
_ERROR_ELEMENT = re.compile(r"(?:in tag|Start Tag|tag mismatch:)\s+([^\s,]+)|^Element '(?:\{[^}]*\})?([^']+)'")
_ENCODING_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_FOREIGN_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\x00<", b"<\x00")


def _parser_options() -> dict:
    return dict(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def make_parser(schema: etree.XMLSchema | None = None) -> etree.XMLParser:
    """A fresh hardened ``XMLParser`` (optionally validating against ``schema``)."""
    return etree.XMLParser(schema=schema, **_parser_options())


class GuardedStream(io.RawIOBase):
    """A read-only wrapper that enforces encoding, no-DTD and size rules on the bytes it passes on.

    ``error`` keeps the first :class:`FormatError` raised so that callers can re-raise it even
    if lxml swallowed it. ``line`` is the number of newlines passed on so far plus one.
    """

    def __init__(self, raw: BinaryIO, *, source: str, max_bytes: int) -> None:
        super().__init__()
        self._raw = raw
        self.source = source
        self.max_bytes = max_bytes
        self.total = 0
        self.line = 1
        self._tail = b""
        self._started = False
        self.error: FormatError | None = None
        self.tee = None  # called with every chunk after the checks (the XSD validator)

    def readable(self) -> bool:
        return True

    def _fail(self, err: FormatError) -> None:
        if self.error is None:
            self.error = err
        raise self.error

    def _check_head(self, chunk: bytes) -> None:
        if chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        if chunk.startswith(_FOREIGN_BOMS):
            self._fail(MalformedInput("document is not UTF-8 (UTF-16/32 is refused)", source=self.source, line=1))
        m = _ENCODING_DECL.match(chunk)
        if m and m.group(1).upper().replace(b"_", b"-") not in (b"UTF-8", b"UTF8"):
            self._fail(
                MalformedInput(
                    "document encoding must be UTF-8", source=self.source, line=1, field="encoding",
                    value=m.group(1).decode("ascii", "replace"),
                )
            )

    def check(self, chunk: bytes) -> None:
        """Run the rules over ``chunk`` (the next bytes of the document)."""
        if self.error is not None:
            raise self.error
        if not self._started and chunk:
            self._started = True
            self._check_head(chunk)
        self.total += len(chunk)
        if self.total > self.max_bytes:
            self._fail(
                HostileInput(
                    f"document larger than the limit of {self.max_bytes} bytes",
                    source=self.source, line=self.line + chunk.count(b"\n"), field="size", value=self.total,
                )
            )
        window = self._tail + chunk
        m = _FORBIDDEN.search(window)
        if m:
            before = window[: m.start()]
            line = self.line - self._tail.count(b"\n") + before.count(b"\n")
            name = _DECLARED_NAME.match(window, m.end())  # the document type or entity declared
            self._fail(HostileInput(
                "DOCTYPE and ENTITY declarations are refused", source=self.source, line=line,
                field=m.group(1).upper().decode("ascii"), value=name and name.group(1).decode("utf-8", "replace"),
            ))
        self.line += chunk.count(b"\n")
        self._tail = window[-16:]

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > _CHUNK:
            size = _CHUNK
        try:
            chunk = self._raw.read(size)
        except FormatError:
            raise
        except Exception as exc:  # a broken stream is reported, never leaked as OSError etc.
            self._fail(MalformedInput(f"cannot read input: {exc}", source=self.source, line=self.line))
        if chunk is None:
            chunk = b""
        if not isinstance(chunk, (bytes, bytearray)):
            self._fail(MalformedInput("input stream must yield bytes", source=self.source, line=self.line))
        chunk = bytes(chunk)
        self.check(chunk)
        if self.tee is not None:
            self.tee(chunk)
        return chunk

    def readinto(self, b) -> int:  # pragma: no cover - lxml uses read()
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _syntax_error(
    exc: etree.XMLSyntaxError | etree.XMLSchemaError, source: str, fallback_line: int | None = None
) -> FormatError:
    """Wrap an lxml error. libxml2 reports no line for XSD violations found while streaming;
    then ``fallback_line`` (the last element seen) is used and the message says "after". The
    field is the element libxml2's message names (the one open when a file is cut short, a
    start tag left unfinished, a mismatched tag, the element breaking the XSD), if any."""
    line = getattr(exc, "lineno", None) or (getattr(exc, "position", None) or (None,))[0]
    msg = getattr(exc, "msg", None) or str(exc) or exc.__class__.__name__
    log = list(getattr(exc, "error_log", None) or [])
    mine = [entry for entry in log if entry.message.strip() == str(msg).strip()] or log[-1:]
    named = _ERROR_ELEMENT.search(str(msg))
    field = named and (named.group(1) or named.group(2))
    if any(entry.domain_name in ("SCHEMASV", "SCHEMAP") for entry in mine):
        if line:
            return SchemaViolation(f"breaks the XSD: {msg}", source=source, line=line, field=field)
        where = f" after line {fallback_line}" if fallback_line else ""
        return SchemaViolation(f"breaks the XSD{where}: {msg}", source=source, line=fallback_line, field=field)
    return MalformedInput(f"not well-formed XML: {msg}", source=source, line=line or fallback_line, field=field)


class _Discard:
    """A parser target with no callbacks: libxml2 checks well-formedness and builds nothing."""

    def close(self) -> None:
        return None


class _WellFormednessCheck:
    """A strict, tree-less libxml2 parser fed every chunk *before* the validating event parser.

    lxml's event parsers (``iterparse``/``XMLPullParser``) with ``schema=`` silently *recover*
    from well-formedness errors (a bare ``&``, a truncated file): they stop and close the open
    elements without an error, so records would vanish. The validating parser therefore never
    sees a chunk this check has not accepted, and the end of the document is checked here
    (truncation) before the event parser is closed. With no SAX callbacks the check costs
    about a tenth of a tree-building parse.
    """

    def __init__(self, source: str) -> None:
        self._parser = etree.XMLParser(target=_Discard(), **_parser_options())
        self._source = source

    def _fail(self, exc: Exception, line: int) -> FormatError:
        if isinstance(exc, (etree.XMLSyntaxError, etree.XMLSchemaError)):
            return _syntax_error(exc, self._source, line)
        return MalformedInput(f"cannot parse XML: {exc}", source=self._source, line=line)

    def feed(self, chunk: bytes, line: int) -> None:
        try:
            self._parser.feed(chunk)
        except (etree.LxmlError, UnicodeError, ValueError, TypeError, RecursionError) as exc:
            raise self._fail(exc, line) from None

    def close(self, line: int) -> None:
        try:
            self._parser.close()
        except (etree.LxmlError, UnicodeError, ValueError, TypeError, RecursionError) as exc:
            raise self._fail(exc, line) from None


def safe_iterparse(
    stream: BinaryIO | bytes,
    *,
    source: str,
    events: Iterable[str] = ("end",),
    tag: str | Iterable[str] | None = None,
    schema=None,
    max_bytes: int,
) -> Iterator[tuple[str, etree._Element]]:
    """Stream ``(event, element)`` pairs from ``stream`` with the hardened settings.

    ``stream`` is a binary file object (or bytes). ``schema`` is ``None`` (no validation), an
    ``etree.XMLSchema`` (validated in-process) or a :class:`formats.xsd.OfficialXsd`: then a
    document longer than one read (64 KiB) is validated by an ``xmllint --stream`` child on
    another core, fed each chunk after the event parser took it (when xmllint is installed;
    else, and for a shorter document, in-process with the compiled XSD).

    In-process, the document is validated in the same libxml2 pass that makes the events, and
    a strict tree-less parser is fed every chunk first (see :class:`_WellFormednessCheck`)
    because the validating parser would recover silently from broken XML; the non-validating
    event parser used beside xmllint is strict itself. Events are handed out one chunk at a
    time, only after the parsers took that chunk without error. An XSD violation is reported
    when the document is closed, before the last chunk's events, so records can be yielded
    before it: act on a stream only once it ended cleanly. The violation raises
    :class:`SchemaViolation`; xmllint names its line, the in-process streaming validator gives
    none, so there the line of the last element seen is named ("after line N").
    The caller should :func:`release` elements it has handled so memory stays flat.

    Raises only :class:`FormatError` subclasses for bad input: :class:`HostileInput`,
    :class:`MalformedInput`, :class:`SchemaViolation`.
    """
    if isinstance(stream, (bytes, bytearray, memoryview)):
        stream = io.BytesIO(bytes(stream))
    guarded = GuardedStream(stream, source=source, max_bytes=max_bytes)
    chunk = guarded.read(_CHUNK)  # raises FormatError (size, DOCTYPE, encoding, broken stream)
    external = None
    if schema is not None and not isinstance(schema, etree.XMLSchema):  # an official XSD file
        from formats.xmllint import XmllintValidator, xmllint_executable

        while 0 < len(chunk) < _CHUNK and (more := guarded.read(_CHUNK - len(chunk))):
            chunk += more  # is there more than one read?

        executable = xmllint_executable() if len(chunk) == _CHUNK else None
        if executable:
            external = XmllintValidator(schema.path, source=source, executable=executable)
            schema = None
        else:
            schema = schema.compiled
    try:
        parser = etree.XMLPullParser(events=tuple(events), tag=tag, schema=schema, **_parser_options())
    except (etree.LxmlError, TypeError, ValueError) as exc:  # pragma: no cover - bad arguments
        raise MalformedInput(f"cannot start parser: {exc}", source=source) from exc
    strict = _WellFormednessCheck(source) if schema is not None else None
    last_line = None
    try:
        while True:
            try:
                if chunk:
                    if strict is not None:
                        strict.feed(chunk, guarded.line)
                    parser.feed(chunk)
                    if external is not None:
                        external.feed(chunk)
                else:
                    if strict is not None:
                        strict.close(guarded.line)
                    parser.close()
                    if external is not None:
                        external.close()
                batch = list(parser.read_events())
            except FormatError:
                raise
            except (etree.XMLSyntaxError, etree.XMLSchemaError) as exc:
                raise _syntax_error(exc, source, last_line or guarded.line) from None
            except (etree.LxmlError, UnicodeError, ValueError, TypeError, OSError, RecursionError) as exc:
                raise MalformedInput(f"cannot parse XML: {exc}", source=source, line=guarded.line) from None
            if batch:
                last_line = batch[-1][1].sourceline or last_line
                yield from batch
            if not chunk:
                return
            chunk = guarded.read(_CHUNK)
    finally:
        if external is not None:
            external.kill()  # a no-op once it gave its verdict; else the reader stopped early


def safe_fromstring(
    data: bytes, *, source: str, max_bytes: int = DEFAULT_MAX_SMALL_BYTES, schema: etree.XMLSchema | None = None
) -> etree._Element:
    """Parse a small whole document with the hardened settings; return its root element.

    Raises :class:`HostileInput`, :class:`MalformedInput` or :class:`SchemaViolation`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("safe_fromstring takes bytes")
    data = bytes(data)
    guard = GuardedStream(io.BytesIO(b""), source=source, max_bytes=max_bytes)
    guard.check(data)
    try:
        return etree.fromstring(data, make_parser(schema))
    except (etree.XMLSyntaxError, etree.XMLSchemaError) as exc:
        raise _syntax_error(exc, source, data.count(b"\n") + 1) from None
    except (etree.LxmlError, UnicodeError, ValueError, RecursionError) as exc:
        raise MalformedInput(f"cannot parse XML: {exc}", source=source) from None


def release(elem: etree._Element) -> None:
    """Free a handled element and everything before it, so a stream uses constant memory."""
    elem.clear(keep_tail=False)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def local(tag: object) -> str:
    """``'{ns}Name'`` -> ``'Name'`` (comments and PIs give ``''``)."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def namespace(tag: object) -> str:
    """``'{ns}Name'`` -> ``'ns'``."""
    if not isinstance(tag, str) or not tag.startswith("{"):
        return ""
    return tag[1:].partition("}")[0]
