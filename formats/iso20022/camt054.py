"""camt.054 bank-to-customer debit/credit notification: what the bank books on our account.

Read as a stream (``.001.08``, tolerant of ``.001.02``; validated against the official XSD
from the ``camt053`` package while streaming); written as ``.001.08`` for the bank simulator.
How entries and details map to :class:`EntryDetail` is described in
:mod:`formats.iso20022._camt`.

>>> import io, datetime as dt
>>> from decimal import Decimal
>>> from formats.model import NotificationHeader, EntryDetail, CreditDebit
>>> h = NotificationHeader("N1", dt.datetime(2026, 11, 4, 8, 0), "3100001", "camt.054.001.08", "N1-1")
>>> back = EntryDetail("E1", Decimal("300.00"), CreditDebit.CREDIT, True, "AC04", "账户已销户")
>>> out = io.BytesIO()
>>> _ = write_camt054(out, h, [back])
>>> n = read_camt054(out.getvalue(), source="n.xml")
>>> n.header == h, n.entries == (back,)
(True, True)
"""

from __future__ import annotations

from typing import BinaryIO, Iterable

from lxml import etree

from formats.model import EntryDetail, Notification, NotificationHeader
from formats.xmlsafe import DEFAULT_MAX_BYTES
from formats.iso20022._camt import NOTIFICATION, CamtReader, open_camt, read_camt, write_camt
from formats.iso20022._xmlwrite import EnvelopedSigner, WriteResult

VERSIONS = NOTIFICATION.versions


def write_camt054(
    out: BinaryIO,
    header: NotificationHeader,
    entries: Iterable[EntryDetail],
    *,
    currency: str = "CNY",
    signer: EnvelopedSigner | None = None,
) -> WriteResult:
    """Stream a camt.054.001.08 with one ``Ntfctn`` for ``header.account`` to ``out``.

    ``header.message_type`` must be ``"camt.054.001.08"``; ``header.report_id`` fills
    ``Ntfctn/Id`` (default: the message id). Raises :class:`OutboundFormatError`.
    """
    return write_camt(NOTIFICATION, out, header, entries, currency=currency, signer=signer)


def open_camt054(
    stream: BinaryIO,
    *,
    source: str,
    schema: etree.XMLSchema | bytes | bool | None = None,
    currency: str = "CNY",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> CamtReader:
    """Start reading a camt.054 from a binary stream: ``.header``, then iterate the details.

    Raises :class:`UnsupportedMessage` for other types, :class:`FormatError` (with source and
    line) for bad input while opening or iterating.
    """
    return open_camt(NOTIFICATION, stream, source=source, schema=schema, currency=currency, max_bytes=max_bytes)


def read_camt054(data: bytes, *, source: str, schema=None, currency: str = "CNY") -> Notification:
    """Read a whole (small) camt.054 into a :class:`Notification`."""
    return read_camt(NOTIFICATION, data, source=source, schema=schema, currency=currency)
