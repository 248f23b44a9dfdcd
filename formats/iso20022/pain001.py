"""pain.001.001.09 customer credit transfer initiation: what we send a partner bank.

Written as a stream (memory does not grow with the number of transactions) in exclusive
canonical XML, so an enveloped XML signature is computed while writing. Read as a stream by
the bank simulator, validated against the official XSD shipped in ``sepaxml``.

Mapping (one ``PmtInf``, CNY):

==========================  ================================================================
model                       XML
==========================  ================================================================
PaymentHeader.message_id    ``GrpHdr/MsgId``; ``created_at`` -> ``GrpHdr/CreDtTm``
number_of_transactions      ``GrpHdr/NbOfTxs`` and ``PmtInf/NbOfTxs``
control_sum                 ``GrpHdr/CtrlSum`` and ``PmtInf/CtrlSum``
initiating_party            ``GrpHdr/InitgPty/Nm``
payment_info_id             ``PmtInf/PmtInfId`` (``PmtMtd`` is ``TRF``)
requested_execution_date    ``PmtInf/ReqdExctnDt/Dt``
debtor_name / _account      ``PmtInf/Dbtr/Nm``, ``PmtInf/DbtrAcct/Id/Othr/Id`` (+ ``Ccy``)
debtor_bank_code            ``PmtInf/DbtrAgt/FinInstnId/ClrSysMmbId/MmbId`` (CNAPS code)
CreditTransfer.instruction_id / end_to_end_id   ``PmtId/InstrId``, ``PmtId/EndToEndId``
amount                      ``Amt/InstdAmt[@Ccy]``
creditor_bank_code          ``CdtrAgt/FinInstnId/ClrSysMmbId/MmbId``
creditor_name               ``Cdtr/Nm``
id_number / id_type         ``Cdtr/Id/PrvtId/Othr/Id`` and ``.../SchmeNm/Prtry`` (only with a number)
creditor_account            ``CdtrAcct/Id/Othr/Id``
remittance                  ``RmtInf/Ustrd``
signature                   ``CstmrCdtTrfInitn/SplmtryData/Envlp/ds:Signature``
==========================  ================================================================

>>> import io, datetime as dt
>>> from decimal import Decimal
>>> from formats.model import PaymentHeader, CreditTransfer
>>> h = PaymentHeader("M1", dt.datetime(2026, 11, 2, 9, 0), "P1", dt.date(2026, 11, 3), "县财政局",
...                   "县财政局", "3100001", "313653000013", 1, Decimal("300.00"))
>>> t = CreditTransfer("E1", Decimal("300.00"), "张三", "6222000011112222", "102653000019", "耕地地力保护补贴 2026-11")
>>> out = io.BytesIO()
>>> write_pain001(out, h, [t]).number_of_transactions
1
>>> read_pain001(out.getvalue(), source="p.xml").transactions == (t,)
True
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import BinaryIO, Iterable, Iterator

from lxml import etree

from formats.errors import ControlTotalMismatch, FormatError, OutboundFormatError, SchemaViolation, UnsupportedMessage
from formats.model import CreditTransfer, PaymentHeader, PaymentInstruction
from formats.money import format_yuan
from formats.xmlsafe import DEFAULT_MAX_BYTES, release, safe_iterparse
from formats.xsd import resolve_schema
from formats.iso20022 import _xmlwrite as w
from formats.iso20022._xmlread import Fields, Irregular, Paths, RecordShapes, check_root, peek_message_type, plain_amount
from formats.iso20022._xmlwrite import EnvelopedSigner, WriteResult

MESSAGE_TYPE = "pain.001.001.09"
NS = w.ns_of(MESSAGE_TYPE)
_CCY = re.compile(r"^[A-Z]{3}$")
_CLOSING = "</CstmrCdtTrfInitn></Document>"
_new = object.__new__

#: what :meth:`Pain001Reader._transaction` looks up in a ``CdtTrfTxInf``, in the order
#: :meth:`Pain001Reader._transaction_fast` unpacks the plan
_TX_PATHS = (
    "Amt/InstdAmt", "PmtId/EndToEndId", "Cdtr/Nm", "CdtrAcct/Id/Othr/Id", "CdtrAgt/FinInstnId/ClrSysMmbId/MmbId",
    "RmtInf/Ustrd", "PmtId/InstrId", "Cdtr/Id/PrvtId/Othr/Id", "Cdtr/Id/PrvtId/Othr/SchmeNm/Prtry",
    "Cdtr/Id/PrvtId/Othr/SchmeNm/Cd",
)


def _header_xml(h: PaymentHeader) -> str:
    if not isinstance(h, PaymentHeader):
        raise OutboundFormatError("header must be a PaymentHeader", field="header", value=type(h).__name__)
    if not isinstance(h.currency, str) or not _CCY.match(h.currency):
        raise OutboundFormatError("currency must be three capital letters", field="currency", value=h.currency)
    if isinstance(h.number_of_transactions, bool) or not isinstance(h.number_of_transactions, int) or h.number_of_transactions < 1:
        raise OutboundFormatError("number_of_transactions must be a positive int", field="NbOfTxs", value=h.number_of_transactions)
    nb = str(h.number_of_transactions)
    if len(nb) > 15:
        raise OutboundFormatError("number_of_transactions too large", field="NbOfTxs", value=nb)
    ctrl = w.amount("CtrlSum", h.control_sum)
    return (
        f'<Document xmlns="{NS}"><CstmrCdtTrfInitn><GrpHdr>'
        f"<MsgId>{w.text('MsgId', h.message_id, 35)}</MsgId>"
        f"<CreDtTm>{w.datetime_text('CreDtTm', h.created_at)}</CreDtTm>"
        f"<NbOfTxs>{nb}</NbOfTxs><CtrlSum>{ctrl}</CtrlSum>"
        f"<InitgPty><Nm>{w.text('InitgPty/Nm', h.initiating_party, 140)}</Nm></InitgPty></GrpHdr>"
        f"<PmtInf><PmtInfId>{w.text('PmtInfId', h.payment_info_id, 35)}</PmtInfId><PmtMtd>TRF</PmtMtd>"
        f"<NbOfTxs>{nb}</NbOfTxs><CtrlSum>{ctrl}</CtrlSum>"
        f"<ReqdExctnDt><Dt>{w.date_text('ReqdExctnDt', h.requested_execution_date)}</Dt></ReqdExctnDt>"
        f"<Dbtr><Nm>{w.text('Dbtr/Nm', h.debtor_name, 140)}</Nm></Dbtr>"
        f"<DbtrAcct><Id><Othr><Id>{w.text('DbtrAcct', h.debtor_account, 34)}</Id></Othr></Id><Ccy>{h.currency}</Ccy></DbtrAcct>"
        f"{w.agent_by_cnaps('DbtrAgt', h.debtor_bank_code, 'DbtrAgt/MmbId')}"
    )


def _plain_values(t: CreditTransfer) -> tuple | None:
    """The values of one transaction as they go into the XML, when each is an ordinary one:
    exactly what :func:`_checked_values` gives for them, with the checks done once over all
    the texts. ``None`` for anything else (then :func:`_checked_values` gives the values or
    names what is wrong)."""
    if type(t) is not CreditTransfer:
        return None
    e2e, name, acct, bank, rmt, instr, idn, idt, amount = (
        t.end_to_end_id, t.creditor_name, t.creditor_account, t.creditor_bank_code, t.remittance, t.instruction_id,
        t.id_number, t.id_type, t.amount)
    if not (type(e2e) is str and 0 < len(e2e) <= 35 and type(name) is str and 0 < len(name) <= 140
            and type(acct) is str and 0 < len(acct) <= 34 and type(bank) is str and 0 < len(bank) <= 35
            and type(rmt) is str and 0 < len(rmt) <= 140
            and (instr is None or (type(instr) is str and 0 < len(instr) <= 35 and not instr.isspace()))
            and (idn is None or (type(idn) is str and 0 < len(idn) <= 35 and not idn.isspace()
                                 and type(idt) is str and 0 < len(idt) <= 35 and not idt.isspace()))
            and not (e2e.isspace() or name.isspace() or acct.isspace() or bank.isspace() or rmt.isspace())
            and type(amount) is Decimal):
        return None
    amt = str(amount)
    if not w.PLAIN_YUAN.fullmatch(amt) or amt == "0.00":  # then ``amt`` is what ``w.amount`` gives
        return None
    texts = "|".join((e2e, name, acct, bank, rmt, instr or "", idn or "", idt if idn is not None else ""))
    if w.NOT_PLAIN_CHAR.search(texts):  # a character to refuse or to escape
        return None
    return e2e, amt, bank, name, acct, rmt, instr, idn, idt if idn is not None else None


def _checked_values(t: CreditTransfer, index: int) -> tuple:
    """The values of one transaction, each checked and escaped on its own; raises
    :class:`OutboundFormatError` naming the field and, as ``line``, the transaction index."""
    if not isinstance(t, CreditTransfer):
        raise OutboundFormatError("transactions must be CreditTransfer", field="CdtTrfTxInf", value=type(t).__name__, line=index)
    instr = None if t.instruction_id is None else w.text('InstrId', t.instruction_id, 35, line=index)
    idn = idt = None
    if t.id_number is not None:
        idn = w.text('Cdtr/Id', t.id_number, 35, line=index)
        idt = w.text('Cdtr/Id/SchmeNm', t.id_type, 35, line=index)
    return (
        w.text('EndToEndId', t.end_to_end_id, 35, line=index), w.amount("InstdAmt", t.amount, line=index),
        w.text('CdtrAgt/MmbId', t.creditor_bank_code, 35, line=index), w.text('Cdtr/Nm', t.creditor_name, 140, line=index),
        w.text('CdtrAcct', t.creditor_account, 34, line=index), w.text('RmtInf/Ustrd', t.remittance, 140, line=index),
        instr, idn, idt,
    )


def _transaction_xml(t: CreditTransfer, ccy: str, index: int) -> str:
    values = _plain_values(t) or _checked_values(t, index)
    e2e, amt, bank, name, acct, rmt, instr, idn, idt = values
    instr = "" if instr is None else f"<InstrId>{instr}</InstrId>"
    cdtr_id = "" if idn is None else (
        f"<Id><PrvtId><Othr><Id>{idn}</Id><SchmeNm><Prtry>{idt}</Prtry></SchmeNm></Othr></PrvtId></Id>")
    return (
        f"<CdtTrfTxInf><PmtId>{instr}<EndToEndId>{e2e}</EndToEndId></PmtId>"
        f'<Amt><InstdAmt Ccy="{ccy}">{amt}</InstdAmt></Amt>'
        f"<CdtrAgt><FinInstnId><ClrSysMmbId><MmbId>{bank}</MmbId></ClrSysMmbId></FinInstnId></CdtrAgt>"
        f"<Cdtr><Nm>{name}</Nm>{cdtr_id}</Cdtr>"
        f"<CdtrAcct><Id><Othr><Id>{acct}</Id></Othr></Id></CdtrAcct>"
        f"<RmtInf><Ustrd>{rmt}</Ustrd></RmtInf></CdtTrfTxInf>"
    )


def write_pain001(
    out: BinaryIO,
    header: PaymentHeader,
    transactions: Iterable[CreditTransfer],
    *,
    signer: EnvelopedSigner | None = None,
) -> WriteResult:
    """Stream one pain.001.001.09 document to the binary file ``out``.

    The body (everything after the XML declaration) is exclusive canonical XML. With
    ``signer`` (a ``StreamingEnvelopedSigner``), an enveloped signature over the whole
    document is placed in ``CstmrCdtTrfInitn/SplmtryData/Envlp``.

    Raises :class:`OutboundFormatError` for a value the format cannot carry (naming the field
    and, as ``line``, the 1-based transaction index) or when the transactions' count or sum
    disagree with ``header`` — checked at the end, so the bytes already written to ``out``
    must then be discarded.
    """
    writer = w.CanonicalWriter(out, hashing=signer is not None)
    head = _header_xml(header)
    writer.write_declaration()
    writer.write(head)
    ccy = header.currency
    count = 0
    total_fen = 0
    for count, t in enumerate(transactions, 1):
        writer.write(_transaction_xml(t, ccy, count))
        total_fen += int(t.amount * 100)
    total = Decimal(total_fen) / 100
    if count != header.number_of_transactions:
        raise OutboundFormatError(
            f"header declares {header.number_of_transactions} transactions but {count} were written",
            field="NbOfTxs", value=header.number_of_transactions,
        )
    if total != header.control_sum:
        raise OutboundFormatError(
            f"header control sum {format_yuan(header.control_sum)} but transactions sum to {format_yuan(total)}",
            field="CtrlSum", value=header.control_sum,
        )
    writer.write("</PmtInf>")
    digest = None
    if signer is not None:
        digest = writer.finish_signed(signer, _CLOSING)
    else:
        writer.finish(_CLOSING)
    return WriteResult(MESSAGE_TYPE, count, header.control_sum.quantize(Decimal("0.01")), writer.bytes_written,
                       signer is not None, digest)


# --------------------------------------------------------------------------- reading


class Pain001Reader:
    """A pain.001.001.09 being read: ``.header`` now, the transactions by iterating.

    Iteration ends by checking the transactions against ``GrpHdr/NbOfTxs`` and
    ``GrpHdr/CtrlSum`` (:class:`ControlTotalMismatch`). Only one ``PmtInf`` is accepted.
    """

    message_type = MESSAGE_TYPE

    def __init__(self, events: Iterator, source: str) -> None:
        self.source = source
        self._events = events
        self._f = Fields(source, Paths(NS))
        self._shapes = RecordShapes(tuple((lambda tx, p=self._f.p[path]: tx.find(p)) for path in _TX_PATHS))
        self._done = False
        self.header = self._read_header()

    def _read_header(self) -> PaymentHeader:
        f = self._f
        grp = None
        for event, elem in self._events:
            if event == "end" and elem.tag == f"{{{NS}}}GrpHdr":
                check_root(elem, NS, "CstmrCdtTrfInitn", self.source)
                grp = elem
            elif (event == "start" and elem.tag == f"{{{NS}}}CdtTrfTxInf") or (event == "end" and elem.tag == f"{{{NS}}}PmtInf"):
                if grp is None:
                    raise SchemaViolation("GrpHdr must come first", source=self.source, line=elem.sourceline, field="GrpHdr")
                pmt = elem.getparent() if elem.tag == f"{{{NS}}}CdtTrfTxInf" else elem
                if event == "end":
                    self._done = True
                header = self._build_header(grp, pmt)
                return header
        raise SchemaViolation("no GrpHdr and PmtInf found", source=self.source, field="PmtInf")

    def _build_header(self, grp: etree._Element, pmt: etree._Element) -> PaymentHeader:
        f = self._f
        ctrl = f.amount(grp, "CtrlSum", required=False)
        if ctrl is None:
            ctrl = f.amount(pmt, "CtrlSum")
        ccy = f.opt(pmt, "DbtrAcct/Ccy") or "CNY"
        header = PaymentHeader(
            message_id=f.req(grp, "MsgId"),
            created_at=f.datetime(grp, "CreDtTm"),
            payment_info_id=f.req(pmt, "PmtInfId"),
            requested_execution_date=f.date(pmt, "ReqdExctnDt/Dt", required=False) or f.date(pmt, "ReqdExctnDt/DtTm"),
            initiating_party=f.opt(grp, "InitgPty/Nm") or "",
            debtor_name=f.opt(pmt, "Dbtr/Nm") or "",
            debtor_account=f.req(pmt, "DbtrAcct/Id/Othr/Id"),
            debtor_bank_code=f.req(pmt, "DbtrAgt/FinInstnId/ClrSysMmbId/MmbId"),
            number_of_transactions=f.integer(grp, "NbOfTxs"),
            control_sum=ctrl,
            currency=ccy,
        )
        return header

    def _transaction(self, tx: etree._Element) -> CreditTransfer:
        f = self._f
        ccy = f.currency(tx, "Amt/InstdAmt")
        if ccy != self.header.currency:
            raise UnsupportedMessage("only one currency per file", source=self.source, line=tx.sourceline,
                                     field="InstdAmt/@Ccy", value=ccy)
        id_number = f.opt(tx, "Cdtr/Id/PrvtId/Othr/Id")
        return CreditTransfer(
            end_to_end_id=f.req(tx, "PmtId/EndToEndId"),
            amount=f.amount(tx, "Amt/InstdAmt"),
            creditor_name=f.req(tx, "Cdtr/Nm"),
            creditor_account=f.req(tx, "CdtrAcct/Id/Othr/Id"),
            creditor_bank_code=f.req(tx, "CdtrAgt/FinInstnId/ClrSysMmbId/MmbId"),
            remittance=f.opt(tx, "RmtInf/Ustrd") or "",
            instruction_id=f.opt(tx, "PmtId/InstrId"),
            id_type=(f.opt(tx, "Cdtr/Id/PrvtId/Othr/SchmeNm/Prtry") or f.opt(tx, "Cdtr/Id/PrvtId/Othr/SchmeNm/Cd") or "01")
            if id_number is not None else "01",
            id_number=id_number,
        )

    def _transaction_fast(self, tx: etree._Element) -> CreditTransfer:
        """:meth:`_transaction` read by the record's shape (see :class:`RecordShapes`); raises
        :class:`Irregular` for a value it does not handle (then :meth:`_transaction` gives the
        result or the error). The result is built without ``__init__`` (a frozen dataclass's
        ``__init__`` costs a ``object.__setattr__`` call per field) and equals the one
        :meth:`_transaction` builds."""
        got = self._shapes.read(tx)
        if got is None:
            raise Irregular
        (amt, e2e, name, account, bank, ustrd, instr, idn, prtry, cd), elements = got
        if amt is None:
            raise Irregular
        amt = elements[amt]
        amount = plain_amount(amt.text)
        if amount is None or amt.get("Ccy") != self.header.currency:
            raise Irregular
        e2e = None if e2e is None else elements[e2e].text
        name = None if name is None else elements[name].text
        account = None if account is None else elements[account].text
        bank = None if bank is None else elements[bank].text
        if not (e2e and name and account and bank):
            raise Irregular
        id_number = None if idn is None else (elements[idn].text or None)
        id_type = "01"
        if id_number is not None:
            id_type = ((None if prtry is None else elements[prtry].text) or (None if cd is None else elements[cd].text)
                       or "01")
        t = _new(CreditTransfer)
        t.__dict__.update(
            end_to_end_id=e2e,
            amount=amount,
            creditor_name=name,
            creditor_account=account,
            creditor_bank_code=bank,
            remittance=(None if ustrd is None else elements[ustrd].text) or "",
            instruction_id=None if instr is None else (elements[instr].text or None),
            id_type=id_type,
            id_number=id_number,
        )
        return t

    def __iter__(self) -> Iterator[CreditTransfer]:
        count = 0
        total = Decimal("0.00")
        tx_tag = f"{{{NS}}}CdtTrfTxInf"
        pmt_tag = f"{{{NS}}}PmtInf"
        pmt_seen = 1
        last_line = None
        if not self._done:
            for event, elem in self._events:
                if event == "end" and elem.tag == tx_tag:
                    try:
                        t = self._transaction_fast(elem)
                    except Irregular:
                        t = self._transaction(elem)
                    count += 1
                    total += t.amount
                    last_line = elem.sourceline
                    release(elem)
                    yield t
                elif event == "start" and elem.tag == pmt_tag:
                    pmt_seen += 1
                    raise UnsupportedMessage("only one PmtInf per file is read", source=self.source,
                                             line=elem.sourceline, field="PmtInf")
        self._done = True
        h = self.header
        if count != h.number_of_transactions:
            raise ControlTotalMismatch(f"GrpHdr/NbOfTxs is {h.number_of_transactions} but {count} transactions found",
                                       source=self.source, line=last_line, field="NbOfTxs", value=h.number_of_transactions)
        if total != h.control_sum:
            raise ControlTotalMismatch(f"GrpHdr/CtrlSum is {format_yuan(h.control_sum)} but transactions sum to {format_yuan(total)}",
                                       source=self.source, line=last_line, field="CtrlSum", value=h.control_sum)


def open_pain001(
    stream: BinaryIO,
    *,
    source: str,
    schema: etree.XMLSchema | bytes | bool | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Pain001Reader:
    """Start reading a pain.001.001.09 from a binary stream; validates against the official XSD
    while streaming (``schema``: a bank XSD as bytes / ``XMLSchema``, or ``False`` to skip).

    Raises :class:`UnsupportedMessage` for another message type, and any
    :class:`FormatError` (with source and line) while the header or transactions are read.
    """
    _, stream = peek_message_type(stream, source=source, expected_prefix="pain.001", supported=frozenset({MESSAGE_TYPE}))
    events = safe_iterparse(
        stream, source=source, events=("start", "end"),
        tag=[f"{{{NS}}}GrpHdr", f"{{{NS}}}PmtInf", f"{{{NS}}}CdtTrfTxInf"],
        schema=resolve_schema(MESSAGE_TYPE, schema), max_bytes=max_bytes,
    )
    return Pain001Reader(events, source)


def read_pain001(data: bytes, *, source: str, schema: etree.XMLSchema | bytes | bool | None = None) -> PaymentInstruction:
    """Read a whole (small) pain.001 document into a :class:`PaymentInstruction`."""
    import io

    reader = open_pain001(io.BytesIO(data), source=source, schema=schema)
    return PaymentInstruction(reader.header, tuple(reader))
