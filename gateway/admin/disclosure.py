"""Public disclosure [Art. 24-29]: the policy list 政策清单, payment notices 公示 and the
self-service query 自助查询.

* :func:`policy_list_rows`, :func:`render_policy_list_html`, :func:`render_policy_list_csv`,
  :func:`write_policy_list`: the unified policy list the finance bureau publishes [Art. 26-27],
  with every field of ``config/policies.toml`` a citizen needs (名目, 对象, 标准, 依据, 申报指南,
  频次, 主管部门, 咨询/举报电话, 公示天数, 公开渠道).
* :func:`build_notice` -> :class:`Notice`; :func:`render_notice_html`, :func:`render_notice_pdf`,
  :func:`write_notice`: the payment notice of one implementation unit for one policy and period
  [Art. 28]: masked names, ID numbers and accounts, amount, date paid, the complaint channel and the
  publication period (``publish_days`` of the policy, counted in calendar days, both ends included).
  The PDF is for notice boards (村务公开栏) and embeds a subset of a CJK font.
* :class:`SelfServiceQuery`: a person gives name and ID number and sees only their own payments
  [Art. 25 自助查询渠道]. Look-up by blind index of the ID, then the decrypted name must match; an
  unknown ID and a wrong name give the same empty answer; every answer is masked; rate limited per
  client and per ID asked about, with an injectable clock. No function here lists anybody's data
  by anything but the asker's own ID number and name.

Nothing here logs or raises with personal data in the message.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import os
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterable

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.config.model import Config, Policy
from gateway.db.models import Batch, Item, ItemEvent
from gateway.errors import YktError
from gateway.identity import InvalidResidentId, validate_resident_id
from gateway.privacy import MaskingRules, PiiVault, read_disclosure_config
from gateway.timeutil import local_date

TEMPLATES = Path(__file__).resolve().parent / "templates" / "disclosure"
FREQUENCY_ZH = {"monthly": "按月", "quarterly": "按季", "half-yearly": "按半年", "yearly": "按年", "once": "一次性"}
STATE_ZH = {"submitted": "审核中", "rejected_by_validation": "未通过审核", "validated": "待发放", "sent": "发放中",
            "accepted": "发放中", "settled": "已发放", "rejected_by_bank": "发放失败，已退回主管部门处理",
            "returned": "资金已退回，主管部门处理中"}
FONT_ENV = "YKT_CJK_FONT"
FONT_CANDIDATES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                   "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
                   "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


class DisclosureError(YktError):
    """A notice or list cannot be produced (unknown unit, policy outside the unit's county, no font)."""


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["yuan"] = lambda d: f"{Decimal(d):,.2f}"
    return env


def yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


# --- the policy list 政策清单 [Art. 26-27] -------------------------------------------------------------
POLICY_COLUMNS = (("code", "补贴代码"), ("name", "补贴名目"), ("beneficiaries", "补贴对象"),
                  ("standard", "补贴标准（元/人/次）"), ("frequency", "发放频次"), ("basis", "补贴依据"),
                  ("guide", "申报指南"), ("department", "主管部门"), ("counties", "实施区县"),
                  ("hotline", "咨询/举报电话"), ("publish_days", "公示天数"), ("channels", "公开渠道"))


def policy_list_rows(cfg: Config) -> list[dict[str, str]]:
    """One dict per policy, keys as in :data:`POLICY_COLUMNS`, values as published (Chinese)."""
    out = []
    for p in sorted(cfg.policies.values(), key=lambda p: p.code):
        dept = cfg.departments.get(p.department)
        out.append({
            "code": p.code, "name": p.name, "beneficiaries": p.beneficiaries, "standard": f"{p.standard:.2f}",
            "frequency": FREQUENCY_ZH.get(p.frequency, p.frequency), "basis": p.basis, "guide": p.guide,
            "department": dept.name if dept else p.department,
            "counties": "、".join(cfg.counties[c].name if c in cfg.counties else c for c in p.counties),
            "hotline": p.hotline, "publish_days": str(p.disclosure.publish_days),
            "channels": "、".join(p.disclosure.channels),
        })
    return out


def render_policy_list_html(cfg: Config, *, published_on: dt.date) -> str:
    return _env().get_template("policy_list.html").render(columns=POLICY_COLUMNS, rows=policy_list_rows(cfg),
                                                          published_on=published_on)


def render_policy_list_csv(cfg: Config) -> bytes:
    """UTF-8 with a byte-order mark (so that Excel opens it as UTF-8), CRLF, header in Chinese."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([zh for _, zh in POLICY_COLUMNS])
    for r in policy_list_rows(cfg):
        w.writerow([r[k] for k, _ in POLICY_COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def write_policy_list(cfg: Config, out_dir: Path | str, *, published_on: dt.date) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html, csv_path = out / "policy-list.html", out / "policy-list.csv"
    html.write_text(render_policy_list_html(cfg, published_on=published_on), encoding="utf-8")
    csv_path.write_bytes(render_policy_list_csv(cfg))
    return [html, csv_path]


# --- payment notices 公示 [Art. 28] ---------------------------------------------------------------------
@dataclass(frozen=True)
class NoticeLine:
    no: int
    name: str  # masked
    id_number: str  # masked
    account: str  # masked
    amount: Decimal
    paid_on: dt.date


@dataclass(frozen=True)
class Notice:
    unit_code: str
    unit_name: str
    county_name: str
    policy_code: str
    policy_name: str
    department_name: str
    period: str
    standard: Decimal
    basis: str
    hotline: str
    channels: tuple[str, ...]
    publish_from: dt.date
    publish_to: dt.date
    lines: tuple[NoticeLine, ...]

    @property
    def count(self) -> int:
        return len(self.lines)

    @property
    def total(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), Decimal("0.00"))

    @property
    def period_zh(self) -> str:
        return f"{self.period[:4]}年{int(self.period[5:])}月"

    @property
    def title(self) -> str:
        return f"{self.unit_name}{self.period_zh}{self.policy_name}发放情况公示"

    @property
    def slug(self) -> str:
        return f"notice-{self.unit_code}-{self.policy_code}-{self.period}"


def _latest_events(item_ids_query) -> sa.Subquery:
    return (sa.select(ItemEvent.item_id, sa.func.max(ItemEvent.id).label("last_id"))
            .where(ItemEvent.item_id.in_(item_ids_query)).group_by(ItemEvent.item_id).subquery())


def build_notice(session, cfg: Config, vault: PiiVault, *, unit: str, policy: str, period: str,
                 published_on: dt.date, rules: MaskingRules | None = None,
                 states: Iterable[str] = ("settled",)) -> Notice:
    """The notice of ``unit`` for ``policy`` and ``period``: every item of every batch of that policy
    and period paid to a beneficiary of the unit whose current state is in ``states`` (by default
    the payments that arrived), in batch and roster order, masked by ``rules``.

    Raises :class:`DisclosureError` for an unknown unit or policy, or a policy not run in the unit's
    county.
    """
    rules = rules or MaskingRules()
    u = cfg.units.get(unit)
    p: Policy | None = cfg.policies.get(policy)
    if u is None:
        raise DisclosureError(f"unknown implementation unit {unit!r}", zh=f"没有实施单位 {unit}")
    if p is None:
        raise DisclosureError(f"unknown policy {policy!r}", zh=f"政策清单中没有补贴项目 {policy}")
    if u.county not in p.counties:
        raise DisclosureError(f"policy {policy} is not run in the county of unit {unit}",
                              zh=f"补贴项目 {policy} 不在实施单位 {unit} 所在区县实施")
    ids = (sa.select(Item.id).join(Batch, Batch.id == Item.batch_id)
           .where(Batch.policy_code == policy, Batch.period == period, Item.unit_code == unit))
    last = _latest_events(ids)
    q = (sa.select(Item.end_to_end_id, Item.name_enc, Item.id_number_enc, Item.account_enc, Item.amount_fen,
                   ItemEvent.at)
         .join(last, last.c.item_id == Item.id).join(ItemEvent, ItemEvent.id == last.c.last_id)
         .where(ItemEvent.state.in_(list(states))).order_by(Item.batch_id, Item.seq))
    lines = []
    for n, (e2e, name, idn, acct, fen, at) in enumerate(session.execute(q), 1):
        lines.append(NoticeLine(n, rules.name(vault.decrypt(name, "items", "name_enc", e2e)),
                                rules.id(vault.decrypt(idn, "items", "id_number_enc", e2e)),
                                rules.account(vault.decrypt(acct, "items", "account_enc", e2e)), yuan(fen),
                                local_date(at)))
    dept = cfg.departments.get(p.department)
    county = cfg.counties.get(u.county)
    return Notice(unit, u.name, county.name if county else u.county, p.code, p.name,
                  dept.name if dept else p.department, period, p.standard, p.basis, p.hotline,
                  tuple(p.disclosure.channels), published_on,
                  published_on + dt.timedelta(days=max(p.disclosure.publish_days, 1) - 1), tuple(lines))


def render_notice_html(notice: Notice) -> str:
    return _env().get_template("notice.html").render(n=notice)


def find_cjk_font() -> tuple[Path, int]:
    """A font file with Simplified Chinese glyphs and, for a collection, the index of its SC face.
    ``$YKT_CJK_FONT`` overrides (``path`` or ``path#index``). Debian: ``fonts-noto-cjk``."""
    env = os.environ.get(FONT_ENV)
    if env:
        path, _, idx = env.partition("#")
        return Path(path), int(idx or 0)
    for c in FONT_CANDIDATES:
        p = Path(c)
        if p.exists():
            if p.suffix.lower() == ".ttc":
                from fontTools.ttLib import TTCollection

                names = [f["name"].getDebugName(1) or "" for f in TTCollection(str(p), lazy=True).fonts]
                idx = next((i for i, nm in enumerate(names) if nm.endswith(" SC")), 0)
                return p, idx
            return p, 0
    raise DisclosureError("no CJK font found for the PDF notice: install fonts-noto-cjk or set YKT_CJK_FONT",
                          zh="找不到中文字体，无法生成PDF公示：请安装 fonts-noto-cjk")


def render_notice_pdf(notice: Notice, *, font: tuple[Path, int] | None = None) -> bytes:
    """An A4 PDF for the notice board, with a subset of a CJK font embedded (fpdf2)."""
    from fpdf import FPDF

    path, index = font or find_cjk_font()
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_creator("yikatong")
    pdf.set_title(notice.title)
    pdf.add_font("cjk", "", str(path), collection_font_number=index)
    pdf.set_auto_page_break(True, margin=18)
    pdf.alias_nb_pages()
    widths = (14, 26, 48, 48, 26, 28)  # 190 mm
    heads = ("序号", "姓名", "身份证号", "银行账号", "金额（元）", "发放日期")

    def header_row():
        pdf.set_font("cjk", size=10)
        pdf.set_fill_color(230, 230, 230)
        for w, h in zip(widths, heads):
            pdf.cell(w, 8, h, border=1, align="C", fill=True)
        pdf.ln()

    pdf.footer = lambda: (pdf.set_y(-13), pdf.set_font("cjk", size=8),  # type: ignore[method-assign]
                          pdf.cell(0, 6, f"{notice.title}  第 {pdf.page_no()} 页 / 共 {{nb}} 页", align="C"))
    pdf.add_page()
    pdf.set_font("cjk", size=16)
    pdf.multi_cell(0, 9, notice.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    intro = (f"根据{notice.basis}，现将{notice.unit_name}{notice.period_zh}{notice.policy_name}发放情况公示如下，"
             f"共{notice.count}人，合计{notice.total:,.2f}元（补贴标准每人不超过{notice.standard:,.2f}元）。"
             f"公示期：{notice.publish_from:%Y年%m月%d日}至{notice.publish_to:%Y年%m月%d日}。"
             f"如有异议，请在公示期内向{notice.department_name}反映，咨询/举报电话：{notice.hotline}。")
    # Chinese wraps between any two characters: no ASCII blanks (fpdf2 would break only there), no justify
    pdf.multi_cell(0, 6, intro.replace(" ", "\u00a0"), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    header_row()
    for ln in notice.lines:
        if pdf.will_page_break(7):
            pdf.add_page()
            header_row()
        pdf.set_font("cjk", size=10)
        for w, v, a in zip(widths, (str(ln.no), ln.name, ln.id_number, ln.account, f"{ln.amount:,.2f}",
                                    ln.paid_on.isoformat()), "CCCCRC"):
            pdf.cell(w, 7, v, border=1, align=a)
        pdf.ln()
    pdf.set_font("cjk", size=10)
    pdf.cell(sum(widths[:4]), 7, "合计", border=1, align="C")
    pdf.cell(widths[4], 7, f"{notice.total:,.2f}", border=1, align="R")
    pdf.cell(widths[5], 7, f"{notice.count} 人", border=1, align="C")
    pdf.ln(10)
    pdf.multi_cell(0, 6, f"公示渠道：{'、'.join(notice.channels) or '村(居)务公开栏'}。个人信息已按规定脱敏。"
                         f"本人可通过自助查询渠道凭姓名和身份证号查询本人补贴发放明细。", align="L",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=12)
    pdf.cell(0, 8, f"咨询/举报电话：{notice.hotline}（{notice.department_name}）", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    pdf.ln(4)
    pdf.cell(0, 6, f"{notice.unit_name}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, f"{notice.publish_from:%Y年%m月%d日}", align="R")
    return bytes(pdf.output())


def write_notice(notice: Notice, out_dir: Path | str, *, pdf: bool = True) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = out / f"{notice.slug}.html"
    html.write_text(render_notice_html(notice), encoding="utf-8")
    written = [html]
    if pdf:
        p = out / f"{notice.slug}.pdf"
        p.write_bytes(render_notice_pdf(notice))
        written.append(p)
    return written


# --- self-service query 自助查询 -----------------------------------------------------------------------
class QueryRefused(YktError):
    """The query was not answered: the input is malformed or the rate limit was reached."""


class QueryRateLimited(QueryRefused):
    def __init__(self, retry_after: dt.timedelta) -> None:
        secs = max(1, int(retry_after.total_seconds() + 0.999))
        super().__init__(f"too many queries; try again in {secs} s", zh=f"查询过于频繁，请 {secs} 秒后再试")
        self.retry_after = retry_after


class RateLimiter:
    """At most ``limit`` hits per key within any ``window`` (sliding). ``clock`` returns now."""

    def __init__(self, limit: int, window: dt.timedelta, clock: Callable[[], dt.datetime]) -> None:
        if limit < 1 or window <= dt.timedelta(0):
            raise ValueError("rate limit and window must be positive")
        self.limit, self.window, self.clock = limit, window, clock
        self._hits: dict[str, deque] = {}
        self._sweep = 0

    def hit(self, key: str) -> None:
        """Count one hit for ``key``; raises :class:`QueryRateLimited` (not counting it) when over."""
        now = self.clock()
        q = self._hits.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.limit:
            raise QueryRateLimited(q[0] + self.window - now)
        q.append(now)
        self._sweep += 1
        if self._sweep >= 1024:  # forget idle keys so memory stays bounded
            self._sweep = 0
            for k in [k for k, d in self._hits.items() if not d or d[-1] <= now - self.window]:
                del self._hits[k]


@dataclass(frozen=True)
class QueryLimits:
    per_client: int = 5
    per_client_seconds: int = 60
    per_id: int = 10
    per_id_seconds: int = 3600

    @classmethod
    def load(cls, config_dir: Path | str) -> "QueryLimits":
        table = read_disclosure_config(config_dir).get("query", {})
        unknown = set(table) - set(cls.__dataclass_fields__)
        if unknown:
            raise DisclosureError(f"disclosure.toml: query.{sorted(unknown)[0]}: unknown key")
        for k, v in table.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise DisclosureError(f"disclosure.toml: query.{k} must be a whole number >= 1")
        return cls(**table)


@dataclass(frozen=True)
class PaymentLine:
    """One of the asker's own payments, as the query shows it (masked)."""

    policy_code: str
    policy_name: str
    period: str
    unit_name: str
    amount: Decimal
    state: str
    state_zh: str
    date: dt.date  # when the payment reached its current state (China date)
    name: str
    id_number: str
    account: str
    hotline: str


def _same_name(a: str, b: str) -> bool:
    norm = lambda s: "".join(unicodedata.normalize("NFKC", s).split()).replace("•", "·").replace(".", "·")
    return hmac.compare_digest(norm(a).encode("utf-8"), norm(b).encode("utf-8"))


@dataclass
class SelfServiceQuery:
    """The 自助查询 service. One instance per process (it holds the rate-limit counters).

    ``clock`` returns the current instant (naive UTC); the web layer passes the client key (e.g.
    the remote address, or a session id) to :meth:`ask`.
    """

    cfg: Config
    vault: PiiVault
    clock: Callable[[], dt.datetime]
    rules: MaskingRules = field(default_factory=MaskingRules)
    limits: QueryLimits = field(default_factory=QueryLimits)

    def __post_init__(self) -> None:
        self._by_client = RateLimiter(self.limits.per_client, dt.timedelta(seconds=self.limits.per_client_seconds),
                                      self.clock)
        self._by_id = RateLimiter(self.limits.per_id, dt.timedelta(seconds=self.limits.per_id_seconds), self.clock)

    def ask(self, session, *, name: str, id_number: str, client_key: str) -> list[PaymentLine]:
        """The asker's own payments, newest period first, or ``[]`` when the ID number is unknown
        *or* the name does not match it (the same answer, so nobody can test IDs or names).

        Raises :class:`QueryRateLimited` past ``limits`` (per client key, and per ID number from
        any client), :class:`QueryRefused` for a malformed ID number or an empty name.
        """
        self._by_client.hit("c:" + hashlib.sha256(client_key.encode("utf-8")).hexdigest())
        if not name.strip() or len(name) > 64:
            raise QueryRefused("name is required", zh="请输入姓名")
        try:
            idn = validate_resident_id(id_number)
        except InvalidResidentId as e:
            raise QueryRefused(f"ID number: {e.en}", zh=e.zh) from None
        id_hash = self.vault.blind_index("id", idn)
        self._by_id.hit("i:" + id_hash)
        return self._lookup(session, id_hash, name)

    def _lookup(self, session, id_hash: str, name: str) -> list[PaymentLine]:
        ids = sa.select(Item.id).where(Item.id_hash == id_hash)
        last = _latest_events(ids)
        q = (sa.select(Item.end_to_end_id, Item.name_enc, Item.id_number_enc, Item.account_enc, Item.amount_fen,
                       Item.unit_code,
                       Batch.policy_code, Batch.period, ItemEvent.state, ItemEvent.at)
             .join(Batch, Batch.id == Item.batch_id).join(last, last.c.item_id == Item.id)
             .join(ItemEvent, ItemEvent.id == last.c.last_id)
             .where(Item.id_hash == id_hash).order_by(Batch.period.desc(), Item.id.desc()))
        out = []
        for e2e, name_enc, idn_enc, acct_enc, fen, unit, policy, period, state, at in session.execute(q):
            real_name = self.vault.decrypt(name_enc, "items", "name_enc", e2e)
            if not _same_name(real_name, name):
                continue
            p = self.cfg.policies.get(policy)
            u = self.cfg.units.get(unit)
            out.append(PaymentLine(policy, p.name if p else policy, period, u.name if u else unit, yuan(fen), state,
                                   STATE_ZH.get(state, state), local_date(at), self.rules.name(real_name),
                                   self.rules.id(self.vault.decrypt(idn_enc, "items", "id_number_enc", e2e)),
                                   self.rules.account(self.vault.decrypt(acct_enc, "items", "account_enc", e2e)),
                                   p.hotline if p else ""))
        return out
