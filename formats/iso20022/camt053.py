"""camt.053 bank-to-customer statement: the day's bookings on our account, returns included.

Read as a stream (``.001.08``, tolerant of ``.001.02``; validated against the official XSD
from the ``camt053`` package while streaming); written as ``.001.08`` for the bank simulator
with one closing booked balance (``CLBD``). How entries map to :class:`EntryDetail` is
described in :mod:`formats.iso20022._camt`.

>>> import io, datetime as dt
>>> from decimal import Decimal
>>> from formats.model import NotificationHeader, EntryDetail, CreditDebit
>>> h = NotificationHeader("S1", dt.datetime(2026, 11, 4, 18, 0), "3100001", "camt.053.001.08", "S1-1")
>>> paid = [EntryDetail("E1", Decimal("1.00"), CreditDebit.DEBIT, entry_reference="B1"),
...         EntryDetail("E2", Decimal("2.00"), CreditDebit.DEBIT, entry_reference="B1")]
>>> out = io.BytesIO()
>>> _ = write_camt053(out, h, paid, closing_balance=Decimal("97.00"))
>>> s = read_camt053(out.getvalue(), source="s.xml")
>>> s.entries == tuple(paid), [e.line for e in s.entries] != [0, 0]
(True, True)
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import BinaryIO, Iterable

from lxml import etree

from formats.errors import OutboundFormatError
from formats.model import EntryDetail, Notification, NotificationHeader
from formats.xmlsafe import DEFAULT_MAX_BYTES
from formats.iso20022 import _xmlwrite as w
from formats.iso20022._camt import STATEMENT, CamtReader, open_camt, read_camt, write_camt
from formats.iso20022._xmlwrite import EnvelopedSigner, WriteResult

VERSIONS = STATEMENT.versions


def write_camt053(
    out: BinaryIO,
    header: NotificationHeader,
    entries: Iterable[EntryDetail],
    *,
    closing_balance: Decimal = Decimal("0.00"),
    balance_date: dt.date | None = None,
    currency: str = "CNY",
    signer: EnvelopedSigner | None = None,
) -> WriteResult:
    """Stream a camt.053.001.08 with one ``Stmt`` for ``header.account`` to ``out``.

    ``closing_balance`` (negative = debit balance) dated ``balance_date`` (default: the day of
    ``header.created_at``) is the one ``Bal`` the XSD requires. Raises :class:`OutboundFormatError`.
    """
    if not isinstance(closing_balance, Decimal):
        raise OutboundFormatError("closing_balance must be a Decimal", field="Bal/Amt", value=closing_balance)
    day = balance_date or (header.created_at.date() if isinstance(header.created_at, dt.datetime) else None)
    indicator = "DBIT" if closing_balance < 0 else "CRDT"
    balance = (
        f"<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>"
        f'<Amt Ccy="{w.esc_attr(currency)}">{w.amount("Bal/Amt", abs(closing_balance), positive=False)}</Amt>'
        f"<CdtDbtInd>{indicator}</CdtDbtInd><Dt><Dt>{w.date_text('Bal/Dt', day)}</Dt></Dt></Bal>"
    )
    return write_camt(STATEMENT, out, header, entries, currency=currency, balance_xml=balance, signer=signer)


def open_camt053(
    stream: BinaryIO,
    *,
    source: str,
    schema: etree.XMLSchema | bytes | bool | None = None,
    currency: str = "CNY",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> CamtReader:
    """Start reading a camt.053 from a binary stream: ``.header``, then iterate the details
    (returns inside the statement come out with ``is_return=True``)."""
    return open_camt(STATEMENT, stream, source=source, schema=schema, currency=currency, max_bytes=max_bytes)


def read_camt053(data: bytes, *, source: str, schema=None, currency: str = "CNY") -> Notification:
    """Read a whole (small) camt.053 into a :class:`Notification`."""
    return read_camt(STATEMENT, data, source=source, schema=schema, currency=currency)
