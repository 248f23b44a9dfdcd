"""Tell what kind of bank file a few bytes are: an ISO 20022 message type, a flat file, or unknown.

The ISO 20022 type is the root element's namespace (``urn:iso:std:iso:20022:tech:xsd:<type>``),
found by a byte scan of the head (no parser, so hostile input cannot hurt here).

>>> detect(b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.12">')
'pain.002.001.12'
>>> detect(b'<p:Document xmlns:p="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><p:BkToCstmrDbtCdtNtfctn>')
'camt.054.001.08'
>>> detect("H|20261101|3|300.00\\r\\nD|1|6222...".encode("gbk"))
'flatfile'
>>> detect(b"\\x00\\x01\\x02")
'unknown'
"""

from __future__ import annotations

import re

_ISO_NS = re.compile(rb"^urn:iso:std:iso:20022:tech:xsd:([a-z]{4}\.\d{3}\.\d{3}\.\d{2})$")
_SKIP = re.compile(rb"\s*(<\?.*?\?>|<!--.*?-->|<!(?!--)[^>]*>)", re.DOTALL)
_START_TAG = re.compile(rb"\s*<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)((?:\s+[^<>]*?)?)/?>", re.DOTALL)
_XMLNS = re.compile(rb"""xmlns(?::([A-Za-z_][\w.\-]*))?\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def detect(head: bytes) -> str:
    """Message type of a document from its first bytes (a few KB are enough).

    Returns e.g. ``"pain.001.001.09"``, ``"flatfile"`` for line-oriented text, or ``"unknown"``.
    """
    if not isinstance(head, (bytes, bytearray)):
        return "unknown"
    data = bytes(head)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    stripped = data.lstrip()
    if stripped.startswith(b"<"):
        return _xml_type(stripped)
    if _looks_like_text(data):
        return "flatfile"
    return "unknown"


def _xml_type(data: bytes) -> str:
    pos = 0
    while True:
        m = _SKIP.match(data, pos)
        if not m:
            break
        pos = m.end()
    m = _START_TAG.match(data, pos)
    if not m:
        return "unknown"
    name, attrs = m.group(1), m.group(2) or b""
    prefix = name.split(b":", 1)[0] if b":" in name else None
    for dm in _XMLNS.finditer(attrs):
        if dm.group(1) == prefix:
            uri = (dm.group(2) if dm.group(2) is not None else dm.group(3) or b"").strip()
            tm = _ISO_NS.match(uri)
            return tm.group(1).decode("ascii") if tm else "unknown"
    return "unknown"


def _looks_like_text(data: bytes) -> bool:
    if not data or b"\x00" in data[:4096]:
        return False
    sample = data[:4096]
    for encoding in ("utf-8", "gb18030"):
        try:
            decoded = sample.decode(encoding)
        except UnicodeDecodeError as exc:
            if exc.start >= len(sample) - 4:  # a character cut at the end of the head
                decoded = sample[: exc.start].decode(encoding, "ignore")
            else:
                continue
        controls = sum(1 for c in decoded if ord(c) < 32 and c not in "\r\n\t")
        return controls == 0 and any(c.isprintable() and not c.isspace() for c in decoded)
    return False
