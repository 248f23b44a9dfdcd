"""What camt.054 (debit/credit notification) and camt.053 (statement) share: the ``Ntry`` /
``TxDtls`` structure, read and written as streams.

Reading (``.001.08``, tolerant of ``.001.02``): every ``Ntry/NtryDtls/TxDtls`` becomes one
:class:`EntryDetail` whose ``line`` is the ``TxDtls`` line; a batch-booked entry with several
``TxDtls`` gives several details. An entry without ``TxDtls`` gives one detail from the entry
itself (``end_to_end_id`` ``"NOTPROVIDED"``). Per detail:

===================  ==================================================================
field                source
===================  ==================================================================
end_to_end_id        ``TxDtls/Refs/EndToEndId`` (else any ``OrgnlEndToEndId`` inside)
amount               ``TxDtls/Amt``, else ``TxDtls/AmtDtls/TxAmt/Amt``, else ``Ntry/Amt`` if
                     it is the entry's only ``TxDtls``
credit_debit         ``TxDtls/CdtDbtInd``, else ``Ntry/CdtDbtInd``
is_return            ``TxDtls/RtrInf`` present, or ``Ntry/BkTxCd`` sub-family ``RRTN``
return_reason_*      ``RtrInf/Rsn/Cd`` (or ``Prtry``), ``RtrInf/AddtlInf`` (joined)
entry_reference      ``Ntry/NtryRef``; ``booking_date``/``value_date``: ``Ntry/BookgDt``, ``ValDt``
counterparty         debit: ``RltdPties/Cdtr`` name and ``CdtrAcct``; credit: ``Dbtr``/``DbtrAcct``
===================  ==================================================================

Only booked entries (``Sts`` ``BOOK``) are yielded; any other entry is not lost but listed in
the reader's ``not_booked`` as ``(line, status, NtryRef)``. Entries in a currency other than the
reader's ``currency`` raise :class:`UnsupportedMessage`.

Writing (``.001.08``): consecutive details that share an ``entry_reference`` (and direction,
return flag and dates) are booked as one batch entry; a detail without ``entry_reference`` is
an entry of its own.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import BinaryIO, Iterable, Iterator

from lxml import etree

from formats.errors import MalformedInput, OutboundFormatError, SchemaViolation, UnsupportedMessage
from formats.model import CreditDebit, EntryDetail, Notification, NotificationHeader
from formats.xmlsafe import DEFAULT_MAX_BYTES, release, safe_iterparse
from formats.xsd import resolve_schema
from formats.iso20022 import _xmlwrite as w
from formats.iso20022._xmlread import (
    Fields, Irregular, Paths, RecordShapes, check_root, children, descend, peek_message_type, plain_amount, plain_date,
    text_of,
)
from formats.iso20022._xmlwrite import EnvelopedSigner, WriteResult

NOT_PROVIDED = "NOTPROVIDED"
_CREDIT_DEBIT = {c.value: c for c in CreditDebit}
_new = object.__new__
_ENTRY_TAGS = ("Sts", "Cd", "Prtry", "Amt", "CdtDbtInd", "NtryRef", "BookgDt", "ValDt", "Dt", "DtTm", "BkTxCd", "Domn",
               "Fmly", "SubFmlyCd")


def _detail_finders(f: Fields) -> tuple:
    """The path lookups of :meth:`CamtReader._detail`, in the order :meth:`CamtReader._detail_fast`
    unpacks them, for :class:`RecordShapes`."""
    p = f.p

    def path(where: str):
        return lambda tx: tx.find(p[where])

    def under_rtr(where: str, many: bool = False):
        def find(tx):
            rtr = tx.find(p["RtrInf"])
            if rtr is None:
                return [] if many else None
            return list(rtr.iterfind(p[where])) if many else rtr.find(p[where])
        return find

    return (
        path("Amt"), path("AmtDtls/TxAmt/Amt"), path("CdtDbtInd"), path("Refs/EndToEndId"),
        lambda tx: tx.find(f".//{{{p.ns}}}OrgnlEndToEndId"),
        path("RtrInf"), under_rtr("Rsn/Cd"), under_rtr("Rsn/Prtry"), under_rtr("AddtlInf", many=True),
        path("RltdPties/Cdtr/Pty/Nm"), path("RltdPties/Cdtr/Nm"),
        path("RltdPties/CdtrAcct/Id/Othr/Id"), path("RltdPties/CdtrAcct/Id/IBAN"),
        path("RltdPties/Dbtr/Pty/Nm"), path("RltdPties/Dbtr/Nm"),
        path("RltdPties/DbtrAcct/Id/Othr/Id"), path("RltdPties/DbtrAcct/Id/IBAN"),
    )


class CamtKind:
    """The names that differ between camt.054 and camt.053."""

    def __init__(self, prefix: str, root: str, report: str) -> None:
        self.prefix = prefix  # "camt.054"
        self.root = root  # "BkToCstmrDbtCdtNtfctn"
        self.report = report  # "Ntfctn"
        self.versions = frozenset({f"{prefix}.001.02", f"{prefix}.001.08"})
        self.write_version = f"{prefix}.001.08"


NOTIFICATION = CamtKind("camt.054", "BkToCstmrDbtCdtNtfctn", "Ntfctn")
STATEMENT = CamtKind("camt.053", "BkToCstmrStmt", "Stmt")


# --------------------------------------------------------------------------- writing


def _detail_xml(d: EntryDetail, ccy: str, index: int) -> str:
    parts = [
        f"<TxDtls><Refs><EndToEndId>{w.text('Refs/EndToEndId', d.end_to_end_id, 35, line=index)}</EndToEndId></Refs>"
        f'<Amt Ccy="{ccy}">{w.amount("TxDtls/Amt", d.amount, line=index)}</Amt><CdtDbtInd>{d.credit_debit.value}</CdtDbtInd>'
    ]
    if d.counterparty_name is not None or d.counterparty_account is not None:
        party, acct = ("Cdtr", "CdtrAcct") if d.credit_debit is CreditDebit.DEBIT else ("Dbtr", "DbtrAcct")
        parts.append("<RltdPties>")
        if d.counterparty_name is not None:
            parts.append(f"<{party}><Pty><Nm>{w.text('RltdPties/' + party, d.counterparty_name, 140, line=index)}</Nm></Pty></{party}>")
        if d.counterparty_account is not None:
            parts.append(w.party_account(acct, d.counterparty_account, "RltdPties/" + acct))
        parts.append("</RltdPties>")
    if d.is_return:
        parts.append("<RtrInf>")
        if d.return_reason_code is not None:
            tag = "Cd" if len(d.return_reason_code) <= 4 else "Prtry"
            parts.append(f"<Rsn><{tag}>{w.text('RtrInf/Rsn', d.return_reason_code, 35, line=index)}</{tag}></Rsn>")
        if d.return_reason_text is not None:
            w.text("RtrInf/AddtlInf", d.return_reason_text, 10_000, line=index)
            for i in range(0, len(d.return_reason_text), 105):
                parts.append(f"<AddtlInf>{w.esc(d.return_reason_text[i:i + 105])}</AddtlInf>")
        parts.append("</RtrInf>")
    elif d.return_reason_code is not None or d.return_reason_text is not None:
        raise OutboundFormatError("a return reason on a detail that is not a return", field="is_return",
                                  value=d.end_to_end_id, line=index)
    parts.append("</TxDtls>")
    return "".join(parts)


def _entry_xml(group: list[tuple[int, EntryDetail]], ccy: str) -> str:
    first = group[0][1]
    total = sum((d.amount for _, d in group), Decimal("0.00"))
    parts = []
    if first.entry_reference is not None:
        parts.append(f"<NtryRef>{w.text('NtryRef', first.entry_reference, 35, line=group[0][0])}</NtryRef>")
    parts.append(f'<Amt Ccy="{ccy}">{w.amount("Ntry/Amt", total)}</Amt><CdtDbtInd>{first.credit_debit.value}</CdtDbtInd>'
                 f"<Sts><Cd>BOOK</Cd></Sts>")
    if first.booking_date is not None:
        parts.append(f"<BookgDt><Dt>{w.date_text('BookgDt', first.booking_date)}</Dt></BookgDt>")
    if first.value_date is not None:
        parts.append(f"<ValDt><Dt>{w.date_text('ValDt', first.value_date)}</Dt></ValDt>")
    sub_family = "RRTN" if first.is_return else "ESCT"
    parts.append(f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>{sub_family}</SubFmlyCd></Fmly></Domn></BkTxCd>"
                 "<NtryDtls>")
    if len(group) > 1:
        parts.append(f"<Btch><NbOfTxs>{len(group)}</NbOfTxs></Btch>")
    parts.extend(_detail_xml(d, ccy, i) for i, d in group)
    parts.append("</NtryDtls>")
    return "<Ntry>" + "".join(parts) + "</Ntry>"


def _group_key(d: EntryDetail) -> tuple | None:
    if d.entry_reference is None:
        return None
    return (d.entry_reference, d.credit_debit, d.is_return, d.booking_date, d.value_date)


def write_camt(
    kind: CamtKind,
    out: BinaryIO,
    header: NotificationHeader,
    entries: Iterable[EntryDetail],
    *,
    currency: str,
    balance_xml: str = "",
    signer: EnvelopedSigner | None = None,
) -> WriteResult:
    version = kind.write_version
    if not isinstance(header, NotificationHeader):
        raise OutboundFormatError("header must be a NotificationHeader", field="header", value=type(header).__name__)
    if header.message_type != version:
        raise OutboundFormatError(f"this writer writes {version}", field="message_type", value=header.message_type)
    ccy = w.text("Ccy", currency, 3)
    head = (
        f'<Document xmlns="{w.ns_of(version)}"><{kind.root}><GrpHdr><MsgId>{w.text("MsgId", header.message_id, 35)}</MsgId>'
        f"<CreDtTm>{w.datetime_text('CreDtTm', header.created_at)}</CreDtTm></GrpHdr>"
        f"<{kind.report}><Id>{w.text(kind.report + '/Id', header.report_id or header.message_id, 35)}</Id>"
        f"{w.party_account('Acct', header.account, 'Acct')}{balance_xml}"
    )
    closing = f"</{kind.root}></Document>"
    writer = w.CanonicalWriter(out, hashing=signer is not None)
    writer.write_declaration()
    writer.write(head)
    count = 0
    total = Decimal("0.00")
    group: list[tuple[int, EntryDetail]] = []
    key = None
    for count, d in enumerate(entries, 1):
        if not isinstance(d, EntryDetail):
            raise OutboundFormatError("entries must be EntryDetail", field="TxDtls", value=type(d).__name__, line=count)
        if not isinstance(d.credit_debit, CreditDebit):
            raise OutboundFormatError("credit_debit must be a CreditDebit", field="CdtDbtInd", value=d.credit_debit, line=count)
        total += d.amount if isinstance(d.amount, Decimal) else Decimal(0)
        k = _group_key(d)
        if group and (k is None or k != key):
            writer.write(_entry_xml(group, ccy))
            group = []
        group.append((count, d))
        key = k
    if group:
        writer.write(_entry_xml(group, ccy))
    writer.write(f"</{kind.report}>")
    digest = None
    if signer is not None:
        digest = writer.finish_signed(signer, closing)
    else:
        writer.finish(closing)
    return WriteResult(version, count, total, writer.bytes_written, signer is not None, digest)


# --------------------------------------------------------------------------- reading


class CamtReader:
    """A camt.054 / camt.053 being read: ``.header`` now; iterating gives :class:`EntryDetail`."""

    def __init__(self, kind: CamtKind, events: Iterator, message_type: str, source: str, currency: str) -> None:
        self.kind = kind
        self.message_type = message_type
        self.source = source
        self.currency = currency
        self.ns = w.ns_of(message_type)
        self.not_booked: list[tuple[int | None, str | None, str | None]] = []
        self._events = events
        self._f = Fields(source, Paths(self.ns))
        self._tags = {f"{{{self.ns}}}{n}": n for n in ("GrpHdr", "Acct", "TxDtls", "Ntry")}
        self._shapes = RecordShapes(_detail_finders(self._f))
        self._t = {n: f"{{{self.ns}}}{n}" for n in _ENTRY_TAGS}
        self.header = self._read_header()

    def _read_header(self) -> NotificationHeader:
        f = self._f
        grp = None
        for _, elem in self._events:
            name = self._tags.get(elem.tag)
            if name == "GrpHdr":
                check_root(elem, self.ns, self.kind.root, self.source)
                grp = elem
            elif name == "Acct":
                report = elem.getparent()
                if report is None or report.tag != f"{{{self.ns}}}{self.kind.report}":
                    continue
                if grp is None:
                    raise SchemaViolation("GrpHdr must come first", source=self.source, line=elem.sourceline, field="GrpHdr")
                self._account = f.req(elem, "Id/Othr/Id") if elem.find(f.p["Id/IBAN"]) is None else f.req(elem, "Id/IBAN")
                return NotificationHeader(
                    message_id=f.req(grp, "MsgId"),
                    created_at=f.datetime(grp, "CreDtTm"),
                    account=self._account,
                    message_type=self.message_type,
                    report_id=f.opt(report, "Id"),
                )
            else:
                raise SchemaViolation(f"{name} before the account of the {self.kind.report}", source=self.source,
                                      line=elem.sourceline, field=name)
        raise SchemaViolation(f"no GrpHdr and {self.kind.report}/Acct found", source=self.source, field=self.kind.report)

    # -- one detail

    def _entry_facts(self, ntry: etree._Element) -> dict:
        f = self._f
        status = f.opt(ntry, "Sts/Cd") or f.opt(ntry, "Sts/Prtry") or (ntry.findtext(f.p["Sts"]) or "").strip() or None
        ccy = f.currency(ntry, "Amt")
        if ccy is not None and ccy != self.currency:
            raise UnsupportedMessage(f"entry currency is not {self.currency}", source=self.source, line=ntry.sourceline,
                                     field="Ntry/Amt/@Ccy", value=ccy)
        return dict(
            status=status,
            amount=f.amount(ntry, "Amt"),
            credit_debit=self._cd(ntry, "CdtDbtInd", required=True),
            entry_reference=f.opt(ntry, "NtryRef"),
            booking_date=f.date(ntry, "BookgDt/Dt", required=False) or f.date(ntry, "BookgDt/DtTm", required=False),
            value_date=f.date(ntry, "ValDt/Dt", required=False) or f.date(ntry, "ValDt/DtTm", required=False),
            rrtn=f.opt(ntry, "BkTxCd/Domn/Fmly/SubFmlyCd") == "RRTN",
        )

    def _entry_facts_fast(self, ntry: etree._Element) -> dict:
        """:meth:`_entry_facts` in one pass over the entry's children; :class:`Irregular` for a
        repeated child or a value it does not handle (then :meth:`_entry_facts` gives the result
        or the error)."""
        t = self._t
        kids = children(ntry)
        status = None
        sts = kids.get(t["Sts"])
        if sts is not None:
            sk = children(sts)
            status = text_of(sk.get(t["Cd"])) or text_of(sk.get(t["Prtry"])) or (sts.text or "").strip() or None
        amt = kids.get(t["Amt"])
        if amt is None:
            raise Irregular
        ccy = amt.get("Ccy")
        amount = plain_amount(amt.text)
        credit_debit = _CREDIT_DEBIT.get(text_of(kids.get(t["CdtDbtInd"])))
        if (ccy is not None and ccy != self.currency) or amount is None or credit_debit is None:
            raise Irregular
        return dict(
            status=status,
            amount=amount,
            credit_debit=credit_debit,
            entry_reference=text_of(kids.get(t["NtryRef"])),
            booking_date=self._date_fast(kids.get(t["BookgDt"])),
            value_date=self._date_fast(kids.get(t["ValDt"])),
            rrtn=text_of(descend(kids.get(t["BkTxCd"]), t["Domn"], t["Fmly"], t["SubFmlyCd"])) == "RRTN",
        )

    def _date_fast(self, elem: etree._Element | None):
        """``f.date(e, "Dt", required=False) or f.date(e, "DtTm", required=False)`` for a plain
        ``Dt``; :class:`Irregular` for anything else."""
        if elem is None:
            return None
        kids = children(elem)
        day = plain_date(text_of(kids.get(self._t["Dt"])))
        if day is None and text_of(kids.get(self._t["DtTm"])) is not None:
            raise Irregular
        return day

    def _facts(self, ntry: etree._Element) -> dict:
        try:
            return self._entry_facts_fast(ntry)
        except Irregular:
            return self._entry_facts(ntry)

    def _cd(self, elem: etree._Element, path: str, *, required: bool) -> CreditDebit | None:
        raw = self._f.req(elem, path) if required else self._f.opt(elem, path)
        if raw is None:
            return None
        try:
            return CreditDebit(raw.strip())
        except ValueError:
            raise MalformedInput("CdtDbtInd must be CRDT or DBIT", source=self.source, line=self._f.line_of(elem, path),
                                 field=path, value=raw) from None

    def _detail(self, tx: etree._Element, facts: dict) -> EntryDetail:
        f = self._f
        amount = f.amount(tx, "Amt", required=False)
        if amount is None:
            amount = f.amount(tx, "AmtDtls/TxAmt/Amt", required=False)
        cd = self._cd(tx, "CdtDbtInd", required=False) or facts["credit_debit"]
        e2e = f.opt(tx, "Refs/EndToEndId")
        if e2e is None:
            found = tx.find(f".//{{{self.ns}}}OrgnlEndToEndId")
            e2e = (found.text if found is not None else None) or NOT_PROVIDED
        rtr = tx.find(f.p["RtrInf"])
        code = text = None
        if rtr is not None:
            code = f.opt(rtr, "Rsn/Cd") or f.opt(rtr, "Rsn/Prtry")
            texts = [t.text for t in rtr.iterfind(f.p["AddtlInf"]) if t.text]
            text = "".join(texts) if texts else None
        party, acct = ("Cdtr", "CdtrAcct") if cd is CreditDebit.DEBIT else ("Dbtr", "DbtrAcct")
        name = f.opt(tx, f"RltdPties/{party}/Pty/Nm") or f.opt(tx, f"RltdPties/{party}/Nm")
        account = f.opt(tx, f"RltdPties/{acct}/Id/Othr/Id") or f.opt(tx, f"RltdPties/{acct}/Id/IBAN")
        return EntryDetail(
            end_to_end_id=e2e,
            amount=amount,  # may be None here; resolved by the caller
            credit_debit=cd,
            is_return=rtr is not None or facts["rrtn"],
            return_reason_code=code,
            return_reason_text=text,
            entry_reference=facts["entry_reference"],
            booking_date=facts["booking_date"],
            value_date=facts["value_date"],
            counterparty_name=name,
            counterparty_account=account,
            line=tx.sourceline or 0,
        )

    def _detail_fast(self, tx: etree._Element, facts: dict) -> EntryDetail:
        """:meth:`_detail` read by the record's shape (see :class:`RecordShapes`); raises
        :class:`Irregular` for a value it does not handle (then :meth:`_detail` gives the result
        or the error). The result is built without ``__init__`` (a frozen dataclass's ``__init__``
        costs an ``object.__setattr__`` call per field) and equals the one :meth:`_detail` builds."""
        got = self._shapes.read(tx)
        if got is None:
            raise Irregular
        plan, el = got
        (amt, amt_dtls, cd, e2e, orgnl_e2e, rtr, rsn_cd, rsn_prtry, addtl,
         cdtr_nm, cdtr_nm2, cdtr_othr, cdtr_iban, dbtr_nm, dbtr_nm2, dbtr_othr, dbtr_iban) = plan
        # each ``x`` below is ``findtext(path) or None``, as in :meth:`_detail`
        raw = None if amt is None else el[amt].text
        if not raw and amt_dtls is not None:
            raw = el[amt_dtls].text
        amount = plain_amount(raw)
        if cd is None or not (credit_debit := el[cd].text):
            credit_debit = facts["credit_debit"]
        else:
            credit_debit = _CREDIT_DEBIT.get(credit_debit)
            if credit_debit is None:
                raise Irregular
        end_to_end_id = None if e2e is None else el[e2e].text
        if not end_to_end_id:
            end_to_end_id = (None if orgnl_e2e is None else el[orgnl_e2e].text) or NOT_PROVIDED
        code = text = None
        if rtr is not None:
            code = (None if rsn_cd is None else el[rsn_cd].text) or (None if rsn_prtry is None else el[rsn_prtry].text) or None
            parts = [el[i].text for i in addtl if el[i].text]
            text = "".join(parts) if parts else None
        if credit_debit is CreditDebit.DEBIT:
            nm, nm2, othr, iban = cdtr_nm, cdtr_nm2, cdtr_othr, cdtr_iban
        else:
            nm, nm2, othr, iban = dbtr_nm, dbtr_nm2, dbtr_othr, dbtr_iban
        name = (None if nm is None else el[nm].text) or (None if nm2 is None else el[nm2].text) or None
        account = (None if othr is None else el[othr].text) or (None if iban is None else el[iban].text) or None
        d = _new(EntryDetail)
        d.__dict__.update(
            end_to_end_id=end_to_end_id,
            amount=amount,  # may be None here; resolved by the caller
            credit_debit=credit_debit,
            is_return=rtr is not None or facts["rrtn"],
            return_reason_code=code,
            return_reason_text=text,
            entry_reference=facts["entry_reference"],
            booking_date=facts["booking_date"],
            value_date=facts["value_date"],
            counterparty_name=name,
            counterparty_account=account,
            line=tx.sourceline or 0,
        )
        return d

    def __iter__(self) -> Iterator[EntryDetail]:
        ntry_tag = f"{{{self.ns}}}Ntry"
        facts = None
        seen_in_entry = 0
        pending: EntryDetail | None = None
        for _, elem in self._events:
            name = self._tags.get(elem.tag)
            if name == "TxDtls":
                dtls = elem.getparent()
                ntry = dtls.getparent() if dtls is not None else None
                if ntry is None or ntry.tag != ntry_tag:
                    raise SchemaViolation("TxDtls outside Ntry/NtryDtls", source=self.source, line=elem.sourceline, field="TxDtls")
                if facts is None:
                    facts = self._facts(ntry)
                seen_in_entry += 1
                if pending is not None:
                    raise SchemaViolation("TxDtls without an amount in a batch entry", source=self.source,
                                          line=pending.line, field="TxDtls/Amt")
                try:
                    detail = self._detail_fast(elem, facts)
                except Irregular:
                    detail = self._detail(elem, facts)
                release(elem)
                if facts["status"] != "BOOK":
                    continue
                if detail.amount is None:
                    pending = detail
                    continue
                yield detail
            elif name == "Ntry":
                if facts is None:
                    facts = self._facts(elem)
                if facts["status"] != "BOOK":
                    self.not_booked.append((elem.sourceline, facts["status"], facts["entry_reference"]))
                elif pending is not None:
                    yield _replace_amount(pending, facts["amount"])
                elif seen_in_entry == 0:
                    yield EntryDetail(
                        end_to_end_id=NOT_PROVIDED, amount=facts["amount"], credit_debit=facts["credit_debit"],
                        is_return=facts["rrtn"], entry_reference=facts["entry_reference"] or self._f.opt(elem, "AcctSvcrRef"),
                        booking_date=facts["booking_date"], value_date=facts["value_date"], line=elem.sourceline or 0,
                    )
                facts, seen_in_entry, pending = None, 0, None
                release(elem)
            elif name == "Acct":
                report = elem.getparent()
                if report is not None and report.tag == f"{{{self.ns}}}{self.kind.report}":
                    f = self._f
                    acct = f.opt(elem, "Id/Othr/Id") or f.opt(elem, "Id/IBAN")
                    if acct != self._account:
                        raise UnsupportedMessage(f"only one account per file is read", source=self.source,
                                                 line=elem.sourceline, field=f"{self.kind.report}/Acct", value=acct)


def _replace_amount(d: EntryDetail, amount: Decimal) -> EntryDetail:
    from dataclasses import replace

    return replace(d, amount=amount)


def open_camt(
    kind: CamtKind,
    stream: BinaryIO,
    *,
    source: str,
    schema: etree.XMLSchema | bytes | bool | None,
    currency: str,
    max_bytes: int,
) -> CamtReader:
    message_type, stream = peek_message_type(stream, source=source, expected_prefix=kind.prefix, supported=kind.versions)
    ns = w.ns_of(message_type)
    events = safe_iterparse(
        stream, source=source, events=("end",),
        tag=[f"{{{ns}}}{n}" for n in ("GrpHdr", "Acct", "TxDtls", "Ntry")],
        schema=resolve_schema(message_type, schema), max_bytes=max_bytes,
    )
    return CamtReader(kind, events, message_type, source, currency)


def read_camt(kind: CamtKind, data: bytes, *, source: str, schema, currency: str) -> Notification:
    reader = open_camt(kind, io.BytesIO(data), source=source, schema=schema, currency=currency, max_bytes=DEFAULT_MAX_BYTES)
    return Notification(reader.header, tuple(reader))
