"""The deadline compliance report [Art. 20-23, 36-37]: per bank, county, policy and batch, how many
obligations were met, late, at risk, outstanding or still awaiting funds; the on-time rate per bank
over time; the ageing of what is still open; cross-bank refunds with their deadline; emergency
payments made outside the system. Written as CSV files, one XLSX workbook and one self-contained
HTML page (inline SVG charts, no script, no network), headed in Chinese with English.

Scope: the items whose file was delivered to the bank between ``date_from`` and ``date_to``
(China dates, inclusive). Status is as of ``now``. Every deadline that depended on the fallback
calendar is flagged on the page and in the workbook.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from formats.money import from_fen
from gateway.calendar import WorkingDayCalendar
from gateway.config.model import Config
from gateway.privacy import PiiVault
from gateway.timeutil import local_date, utc_from_local
from reconciliation.corrections import write_table
from reconciliation.deadlines import (AWAITING_FUNDS, CREDIT, LABEL, OBLIGATIONS, OPEN, REFUND_INFO, RESULTS,
                                      STATUS_LABEL, STATUSES, DeadlineClock, Tallies, item_deadlines)
from reconciliation.emergency import EmergencyView, emergency_payments

DIMENSIONS = (("bank", "代发银行 bank"), ("county", "区县 county"), ("policy", "补贴项目 policy"),
              ("batch", "批次 batch"))
AGE_BUCKETS = ((0, 1, "0-1"), (2, 3, "2-3"), (4, 5, "4-5"), (6, 10, "6-10"), (11, 10 ** 6, ">10"))


@dataclass(frozen=True)
class RefundLine:
    batch_ref: str
    department_code: str
    unit_code: str
    bank_id: str
    end_to_end_id: str
    amount_fen: int
    due: dt.date
    done: dt.date | None
    status: str
    basis: str


@dataclass
class ComplianceReport:
    date_from: dt.date
    date_to: dt.date
    generated_at: dt.datetime
    groups: dict = field(default_factory=lambda: {d: {} for d, _ in DIMENSIONS})  # dim -> key -> Tallies
    names: dict = field(default_factory=lambda: {d: {} for d, _ in DIMENSIONS})  # dim -> key -> label
    total: Tallies = field(default_factory=Tallies)
    trend: dict = field(default_factory=dict)  # bank -> period start -> Tallies (credit on-time rate over time)
    ageing: dict = field(default_factory=lambda: {b[2]: {"counting": 0, AWAITING_FUNDS: 0} for b in AGE_BUCKETS})
    refunds: list[RefundLine] = field(default_factory=list)
    emergency: list[EmergencyView] = field(default_factory=list)

    @property
    def fallback_years(self) -> list[int]:
        return sorted(self.total.fallback_years)


def _bucket(days: int) -> str:
    for lo, hi, label in AGE_BUCKETS:
        if lo <= days <= hi:
            return label
    return AGE_BUCKETS[-1][2]


def compliance_report(session: Session, cfg: Config, calendar: WorkingDayCalendar, vault: PiiVault, *,
                      date_from: dt.date, date_to: dt.date, now: dt.datetime) -> ComplianceReport:
    """Build the report (streams the items; memory grows with the number of groups, not items)."""
    if date_to < date_from:
        from gateway.errors import YktError
        raise YktError(f"--to {date_to} is before --from {date_from}", zh="截止日期早于起始日期")
    rep = ComplianceReport(date_from, date_to, now)
    clock = DeadlineClock(calendar)
    today = local_date(now)
    weekly = (date_to - date_from).days > 31
    ages: dict[dt.date, int] = {}
    start = utc_from_local(date_from, dt.time(0))
    end = utc_from_local(date_to + dt.timedelta(days=1), dt.time(0))
    for d in item_deadlines(session, cfg, clock, now=now, delivered_from=start, delivered_to=end):
        rep.total.add(d)
        for dim, key, label in (("bank", d.bank_id, cfg.banks[d.bank_id].name),
                                ("county", d.county_code, getattr(cfg.counties.get(d.county_code), "name", "")),
                                ("policy", d.policy_code, getattr(cfg.policies.get(d.policy_code), "name", "")),
                                ("batch", d.batch_ref, d.department_code)):
            g = rep.groups[dim].get(key)
            if g is None:
                g = rep.groups[dim][key] = Tallies()
                rep.names[dim][key] = label
            g.add(d)
        period = d.delivered_on - dt.timedelta(days=d.delivered_on.weekday()) if weekly else d.delivered_on
        rep.trend.setdefault(d.bank_id, {}).setdefault(period, Tallies()).add(d)
        open_ = [o for o in d.obligations if o.status in OPEN]
        if open_:
            since = d.clock_start or d.delivered_on
            if since not in ages:
                ages[since] = max(0, calendar.working_days_between(since, today))
            waiting = all(o.status == AWAITING_FUNDS for o in open_)
            rep.ageing[_bucket(ages[since])][AWAITING_FUNDS if waiting else "counting"] += 1
        if d.refund is not None:
            o = d.refund
            rep.refunds.append(RefundLine(d.batch_ref, d.department_code, d.unit_code, d.bank_id, d.end_to_end_id,
                                          d.amount_fen, o.due, o.done, o.status, o.basis))
    rep.emergency = emergency_payments(session, vault, paid_from=date_from, paid_to=date_to)
    return rep


# ------------------------------------------------------------------------------- tables

def _rate(t: Tallies, kind: str) -> str:
    r = t.on_time_rate(kind)
    return "" if r is None else f"{r * 100:.1f}%"


def group_header(dim_label: str) -> list[str]:
    head = [dim_label, "名称 name", "笔数 items", "金额 amount (yuan)"]
    for k in OBLIGATIONS:
        zh, en = LABEL[k]
        head += [f"{zh}{STATUS_LABEL[s][0]} {en} {STATUS_LABEL[s][1]}" for s in STATUSES]
        head.append(f"{zh}按时率 {en} on-time rate")
    head.append("备用日历年份 fallback calendar years")
    return head


def group_rows(rep: ComplianceReport, dim: str) -> list[list]:
    rows = []
    for key in sorted(rep.groups[dim]):
        t = rep.groups[dim][key]
        row = [key, rep.names[dim][key], t.items, str(from_fen(t.amount_fen))]
        for k in OBLIGATIONS:
            row += [t.counts[k][s] for s in STATUSES]
            row.append(_rate(t, k))
        row.append(",".join(map(str, sorted(t.fallback_years))))
        rows.append(row)
    return rows


REFUND_HEADER = ["批次 batch", "主管部门 department", "实施单位 unit", "代发银行 bank", "发放编号 end-to-end id",
                 "金额 amount", "反馈期限 due", "反馈日期 reported on", "状态 status", "依据 basis"]
EMERGENCY_HEADER = ["编号 id", "区县 county", "主管部门 department", "补贴项目 policy", "实施单位 unit", "姓名 name",
                    "身份证号 ID number", "金额 amount", "发放日期 paid on", "渠道 channel", "渠道说明 channel detail",
                    "原因 reason", "审批文号 approval", "登记人 recorded by"]
AGEING_HEADER = ["已过工作日 working days open", "计时中 clock running", "待拨款 awaiting funds"]


def refund_rows(rep: ComplianceReport) -> list[list]:
    return [[r.batch_ref, r.department_code, r.unit_code, r.bank_id, r.end_to_end_id, str(from_fen(r.amount_fen)),
             r.due.isoformat(), r.done.isoformat() if r.done else "",
             f"{STATUS_LABEL[r.status][0]} {STATUS_LABEL[r.status][1]}", r.basis] for r in rep.refunds]


def emergency_rows(rep: ComplianceReport) -> list[list]:
    return [[e.id, e.county_code, e.department_code, e.policy_code or "", e.unit_code or "", e.name, e.id_number,
             str(e.amount), e.paid_on.isoformat(), f"{e.channel_zh} {e.channel}", e.channel_detail or "", e.reason,
             e.approval_ref, e.recorded_by] for e in rep.emergency]


def ageing_rows(rep: ComplianceReport) -> list[list]:
    return [[label, rep.ageing[label]["counting"], rep.ageing[label][AWAITING_FUNDS]] for _, _, label in AGE_BUCKETS]


# ------------------------------------------------------------------------------- charts (inline SVG)

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def svg_trend(rep: ComplianceReport, kind: str = CREDIT, width: int = 720, height: int = 260) -> str:
    """On-time rate per bank over time: one line per bank, 0-100 %."""
    periods = sorted({p for series in rep.trend.values() for p in series})
    if not periods:
        return '<p class="empty">无数据 no data</p>'
    left, right, top, bottom = 48, 160, 16, 40
    w, h = width - left - right, height - top - bottom
    x = {p: left + (w * i / max(1, len(periods) - 1) if len(periods) > 1 else w / 2) for i, p in enumerate(periods)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="on-time rate per bank">']
    for pct in (0, 25, 50, 75, 100):
        y = top + h * (1 - pct / 100)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{pct}%</text>')
    step = max(1, len(periods) // 8)
    for i, p in enumerate(periods):
        if i % step == 0:
            out.append(f'<text x="{x[p]:.1f}" y="{top + h + 16}" text-anchor="middle" font-size="11">'
                       f'{p:%m-%d}</text>')
    for n, bank in enumerate(sorted(rep.trend)):
        color = PALETTE[n % len(PALETTE)]
        pts = []
        for p in periods:
            t = rep.trend[bank].get(p)
            r = t.on_time_rate(kind) if t else None
            if r is not None:
                pts.append((x[p], top + h * (1 - r)))
        if pts:
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                       + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
            out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}"/>' for a, b in pts]
        ly = top + 14 + n * 16
        out.append(f'<rect x="{left + w + 12}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{left + w + 26}" y="{ly}" font-size="11">{html.escape(bank)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_ageing(rep: ComplianceReport, width: int = 720, height: int = 240) -> str:
    """Open items by working days since their clock started: clock running vs awaiting funds (stacked)."""
    left, right, top, bottom = 48, 160, 16, 40
    w, h = width - left - right, height - top - bottom
    peak = max([v["counting"] + v[AWAITING_FUNDS] for v in rep.ageing.values()] + [1])
    bw = w / len(AGE_BUCKETS)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="ageing of open items">']
    out.append(f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#999"/>')
    for i, (_, _, label) in enumerate(AGE_BUCKETS):
        v = rep.ageing[label]
        x0 = left + i * bw + bw * 0.15
        y = top + h
        for key, color in (("counting", "#d62728"), (AWAITING_FUNDS, "#aaaaaa")):
            bh = h * v[key] / peak
            if bh:
                out.append(f'<rect x="{x0:.1f}" y="{y - bh:.1f}" width="{bw * 0.7:.1f}" height="{bh:.1f}" '
                           f'fill="{color}"><title>{v[key]}</title></rect>')
            y -= bh
        total = v["counting"] + v[AWAITING_FUNDS]
        out.append(f'<text x="{x0 + bw * 0.35:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="11">{total}</text>'
                   f'<text x="{x0 + bw * 0.35:.1f}" y="{top + h + 16}" text-anchor="middle" font-size="11">'
                   f'{label}</text>')
    for n, (txt, color) in enumerate((("计时中 clock running", "#d62728"), ("待拨款 awaiting funds", "#aaaaaa"))):
        ly = top + 14 + n * 16
        out.append(f'<rect x="{left + w + 12}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{left + w + 26}" y="{ly}" font-size="11">{txt}</text>')
    out.append("</svg>")
    return "".join(out)


# ------------------------------------------------------------------------------- output

def render_html(rep: ComplianceReport) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    tables = [(label, group_header(label), group_rows(rep, dim)) for dim, label in DIMENSIONS]
    return env.get_template("compliance.html.j2").render(
        rep=rep, tables=tables, obligations=[(k, LABEL[k]) for k in OBLIGATIONS],
        total_rates={k: _rate(rep.total, k) for k in OBLIGATIONS}, labels=STATUS_LABEL, statuses=STATUSES,
        refund_header=REFUND_HEADER, refunds=refund_rows(rep), emergency_header=EMERGENCY_HEADER,
        emergency=emergency_rows(rep), ageing_header=AGEING_HEADER, ageing=ageing_rows(rep),
        trend_svg=Markup(svg_trend(rep)), results_svg=Markup(svg_trend(rep, RESULTS)), ageing_svg=Markup(svg_ageing(rep)),
        articles={CREDIT: "第二十条", RESULTS: "第二十一条", REFUND_INFO: "第二十二条"})


def write_report(rep: ComplianceReport, out_dir: Path) -> list[Path]:
    """Write the CSV files, ``compliance.xlsx`` and ``compliance.html`` into ``out_dir``; returns the paths."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    sheets = []
    for dim, label in DIMENSIONS:
        sheets.append((f"by_{dim}", group_header(label), group_rows(rep, dim)))
    sheets += [("refunds", REFUND_HEADER, refund_rows(rep)), ("emergency", EMERGENCY_HEADER, emergency_rows(rep)),
               ("ageing", AGEING_HEADER, ageing_rows(rep))]
    for name, head, rows in sheets:
        p = out_dir / f"{name}.csv"
        p.write_bytes(write_table(head, rows, fmt="csv"))
        written.append(p)
    wb = Workbook()
    info = wb.active
    info.title = "说明 about"
    info.append(["一卡通发放时限合规报告 Deadline compliance report"])
    info["A1"].font = Font(bold=True, size=14)
    info.append(["期间 period (delivered)", f"{rep.date_from} .. {rep.date_to}"])
    info.append(["生成时间 generated (UTC)", rep.generated_at.isoformat(sep=" ", timespec="seconds")])
    info.append(["笔数 items", rep.total.items])
    for k in OBLIGATIONS:
        info.append([f"{LABEL[k][0]} {LABEL[k][1]} 按时率 on-time rate", _rate(rep.total, k)])
    if rep.fallback_years:
        info.append(["注意 warning", f"{', '.join(map(str, rep.fallback_years))} 年无官方节假日安排，按备用日历推算 / "
                                    "no official calendar for these years: fallback calendar used"])
    for name, head, rows in sheets:
        ws = wb.create_sheet(name)
        ws.append(head)
        for c in ws[1]:
            c.font = Font(bold=True)
        for r in rows:
            ws.append(r)
    p = out_dir / "compliance.xlsx"
    wb.save(p)
    written.append(p)
    p = out_dir / "compliance.html"
    p.write_text(render_html(rep), encoding="utf-8")
    written.append(p)
    return written


def group_tallies(rep: ComplianceReport, dim: str) -> dict[str, dict]:
    """Machine-readable tallies of one dimension (for ``--json``)."""
    return {k: {**t.as_dict(), "on_time_rate": {o: _rate(t, o) for o in OBLIGATIONS}}
            for k, t in sorted(rep.groups[dim].items())}


