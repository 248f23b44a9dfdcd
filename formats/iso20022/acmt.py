"""acmt.023.001.03 identification verification request and acmt.024.001.03 report: asking the
bank whether an account belongs to a person (name, ID number) and is usable.

No package ships these XSDs, so the readers check the structure they rely on themselves:

* acmt.023: root ``Document/IdVrfctnReq``; ``Assgnmt/MsgId`` and ``Assgnmt/CreDtTm`` present and
  parseable; at least one ``Vrfctn``; each has ``Id`` and ``PtyAndAcctId/Acct/Othr/Id`` and
  ``PtyAndAcctId/Pty/Nm``; ``Vrfctn/Id`` values are unique.
* acmt.024: root ``Document/IdVrfctnRpt``; ``Assgnmt/MsgId``, ``Assgnmt/CreDtTm`` and
  ``OrgnlAssgnmt/MsgId`` present; at least one ``Rpt``; each has ``OrgnlId`` and ``Vrfctn``
  equal to ``true`` or ``false``; ``OrgnlId`` values are unique.

A failed check raises :class:`SchemaViolation` naming the element and line. The writers emit
exclusive canonical XML in the element order of the ISO 20022 message definitions.

Mapping: ``VerificationQuery.query_id`` -> ``Vrfctn/Id``; ``name`` -> ``PtyAndAcctId/Pty/Nm``;
``id_number`` -> ``PtyAndAcctId/Pty/Id/PrvtId/Othr/Id``; ``account`` ->
``PtyAndAcctId/Acct/Othr/Id``; ``bank_code`` -> ``PtyAndAcctId/Agt/FinInstnId/ClrSysMmbId/MmbId``.
``VerificationResult.query_id`` -> ``Rpt/OrgnlId``; ``verified`` -> ``Rpt/Vrfctn``;
``reason_code`` -> ``Rpt/Rsn/Cd``; ``reason_text`` -> ``Rpt/Rsn/Prtry`` when there is no code,
otherwise (project convention) ``Rpt/SplmtryData/Envlp/RsnTxt``.

>>> import datetime as dt
>>> from formats.model import VerificationQuery, VerificationRequest
>>> req = VerificationRequest("Q1", dt.datetime(2026, 11, 1, 9, 0), (VerificationQuery("1", "张三", "6222000011112222", "110101199003077777"),))
>>> read_acmt023(write_acmt023(req), source="q.xml") == req
True
"""

from __future__ import annotations

import io

from lxml import etree

from formats.errors import SchemaViolation
from formats.model import VerificationQuery, VerificationReport, VerificationRequest, VerificationResult
from formats.xmlsafe import DEFAULT_MAX_SMALL_BYTES, safe_fromstring
from formats.errors import OutboundFormatError
from formats.iso20022 import _xmlwrite as w
from formats.iso20022._xmlread import Fields, Paths, peek_message_type

REQUEST_TYPE = "acmt.023.001.03"
REPORT_TYPE = "acmt.024.001.03"


def _assignment(message_id: str, created_at, assigner: str, assignee: str) -> str:
    return (
        f"<Assgnmt><MsgId>{w.text('Assgnmt/MsgId', message_id, 35)}</MsgId>"
        f"<CreDtTm>{w.datetime_text('Assgnmt/CreDtTm', created_at)}</CreDtTm>"
        f"<Assgnr><Pty><Nm>{w.text('Assgnr', assigner, 140)}</Nm></Pty></Assgnr>"
        f"<Assgne><Pty><Nm>{w.text('Assgne', assignee, 140)}</Nm></Pty></Assgne></Assgnmt>"
    )


def write_acmt023(request: VerificationRequest, *, assigner: str = "yikatong", assignee: str = "bank") -> bytes:
    """An acmt.023.001.03 document (bytes) for ``request``. Raises :class:`OutboundFormatError`."""
    if not isinstance(request, VerificationRequest) or not request.queries:
        raise OutboundFormatError("a VerificationRequest with at least one query is needed", field="Vrfctn", value=request)
    parts = [f'<Document xmlns="{w.ns_of(REQUEST_TYPE)}"><IdVrfctnReq>',
             _assignment(request.message_id, request.created_at, assigner, assignee)]
    for i, q in enumerate(request.queries, 1):
        pid = "" if q.id_number is None else f"<Id><PrvtId><Othr><Id>{w.text('Pty/Id', q.id_number, 35, line=i)}</Id></Othr></PrvtId></Id>"
        agt = "" if q.bank_code is None else w.agent_by_cnaps("Agt", q.bank_code, "Agt/MmbId")
        parts.append(
            f"<Vrfctn><Id>{w.text('Vrfctn/Id', q.query_id, 35, line=i)}</Id><PtyAndAcctId>"
            f"<Pty><Nm>{w.text('Pty/Nm', q.name, 140, line=i)}</Nm>{pid}</Pty>"
            f"<Acct><Othr><Id>{w.text('Acct', q.account, 34, line=i)}</Id></Othr></Acct>{agt}</PtyAndAcctId></Vrfctn>"
        )
    parts.append("</IdVrfctnReq></Document>")
    return w.XML_DECLARATION + "".join(parts).encode("utf-8")


def write_acmt024(report: VerificationReport, *, assigner: str = "bank", assignee: str = "yikatong") -> bytes:
    """An acmt.024.001.03 document (bytes) for ``report``. Raises :class:`OutboundFormatError`."""
    if not isinstance(report, VerificationReport) or not report.results:
        raise OutboundFormatError("a VerificationReport with at least one result is needed", field="Rpt", value=report)
    parts = [f'<Document xmlns="{w.ns_of(REPORT_TYPE)}"><IdVrfctnRpt>',
             _assignment(report.message_id, report.created_at, assigner, assignee),
             f"<OrgnlAssgnmt><MsgId>{w.text('OrgnlAssgnmt/MsgId', report.original_message_id, 35)}</MsgId></OrgnlAssgnmt>"]
    for i, r in enumerate(report.results, 1):
        if not isinstance(r.verified, bool):
            raise OutboundFormatError("verified must be a bool", field="Rpt/Vrfctn", value=r.verified, line=i)
        rsn = supplementary = ""
        if r.reason_code is not None:
            rsn = f"<Rsn><Cd>{w.text('Rpt/Rsn/Cd', r.reason_code, 4, line=i)}</Cd></Rsn>"
            if r.reason_text is not None:
                supplementary = (f"<SplmtryData><Envlp><RsnTxt>{w.text('Rpt/RsnTxt', r.reason_text, 500, line=i)}"
                                 f"</RsnTxt></Envlp></SplmtryData>")
        elif r.reason_text is not None:
            rsn = f"<Rsn><Prtry>{w.text('Rpt/Rsn/Prtry', r.reason_text, 35, line=i)}</Prtry></Rsn>"
        parts.append(
            f"<Rpt><OrgnlId>{w.text('Rpt/OrgnlId', r.query_id, 35, line=i)}</OrgnlId>"
            f"<Vrfctn>{'true' if r.verified else 'false'}</Vrfctn>{rsn}{supplementary}</Rpt>"
        )
    parts.append("</IdVrfctnRpt></Document>")
    return w.XML_DECLARATION + "".join(parts).encode("utf-8")


def _root(data: bytes, message_type: str, body: str, source: str, max_bytes: int) -> tuple[etree._Element, Fields]:
    peek_message_type(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data, source=source,
                      expected_prefix=message_type[:4], supported=frozenset({message_type}))
    root = safe_fromstring(data, source=source, max_bytes=max_bytes)
    ns = w.ns_of(message_type)
    f = Fields(source, Paths(ns))
    if root.tag != f"{{{ns}}}Document":
        raise SchemaViolation("root element must be Document", source=source, line=root.sourceline, field="Document", value=root.tag)
    inner = root.find(f.p[body])
    if inner is None:
        raise SchemaViolation(f"Document must hold {body}", source=source, line=root.sourceline, field=body)
    return inner, f


def _unique(seen: set, value: str, source: str, elem: etree._Element, field: str) -> None:
    if value in seen:
        raise SchemaViolation(f"{field} repeated", source=source, line=elem.sourceline, field=field, value=value)
    seen.add(value)


def read_acmt023(data: bytes, *, source: str, max_bytes: int = DEFAULT_MAX_SMALL_BYTES) -> VerificationRequest:
    """Read an acmt.023.001.03 (structural checks in the module docstring)."""
    body, f = _root(data, REQUEST_TYPE, "IdVrfctnReq", source, max_bytes)
    queries = []
    seen: set[str] = set()
    for v in body.iterfind(f.p["Vrfctn"]):
        qid = f.req(v, "Id")
        _unique(seen, qid, source, v, "Vrfctn/Id")
        queries.append(VerificationQuery(
            query_id=qid,
            name=f.req(v, "PtyAndAcctId/Pty/Nm"),
            account=f.req(v, "PtyAndAcctId/Acct/Othr/Id"),
            id_number=f.opt(v, "PtyAndAcctId/Pty/Id/PrvtId/Othr/Id"),
            bank_code=f.opt(v, "PtyAndAcctId/Agt/FinInstnId/ClrSysMmbId/MmbId"),
        ))
    if not queries:
        raise SchemaViolation("at least one Vrfctn is required", source=source, line=body.sourceline, field="Vrfctn")
    return VerificationRequest(f.req(body, "Assgnmt/MsgId"), f.datetime(body, "Assgnmt/CreDtTm"), tuple(queries))


def read_acmt024(data: bytes, *, source: str, max_bytes: int = DEFAULT_MAX_SMALL_BYTES) -> VerificationReport:
    """Read an acmt.024.001.03 (structural checks in the module docstring)."""
    body, f = _root(data, REPORT_TYPE, "IdVrfctnRpt", source, max_bytes)
    results = []
    seen: set[str] = set()
    for r in body.iterfind(f.p["Rpt"]):
        qid = f.req(r, "OrgnlId")
        _unique(seen, qid, source, r, "Rpt/OrgnlId")
        flag = f.req(r, "Vrfctn").strip()
        if flag not in ("true", "false", "1", "0"):
            raise SchemaViolation("Vrfctn must be true or false", source=source, line=f.line_of(r, "Vrfctn"),
                                  field="Rpt/Vrfctn", value=flag)
        code = f.opt(r, "Rsn/Cd")
        text = f.opt(r, "SplmtryData/Envlp/RsnTxt") if code is not None else f.opt(r, "Rsn/Prtry")
        results.append(VerificationResult(qid, flag in ("true", "1"), code, text))
    if not results:
        raise SchemaViolation("at least one Rpt is required", source=source, line=body.sourceline, field="Rpt")
    return VerificationReport(f.req(body, "Assgnmt/MsgId"), f.datetime(body, "Assgnmt/CreDtTm"),
                              f.req(body, "OrgnlAssgnmt/MsgId"), tuple(results))
