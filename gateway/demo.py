"""``ykt demo``: the whole cycle on SQLite with three simulated banks on loopback, in about a minute.

What it does, in order (everything it writes stays under ``var/demo/`` for you to open):

1. a fresh database, keys for the gateway and the banks, a personal-data key;
2. three simulated partner banks on loopback (ISO 20022 over SFTP, ISO 20022 over HTTPS, a GBK flat
   file over SFTP), all on one simulated clock starting Monday 2026-11-02 10:00 (Chongqing time);
3. synthetic beneficiaries (realistic names, valid resident IDs, Luhn-valid cards) who register their
   own accounts [Art. 10-11]; screening lists (deceased, public employees, supported persons) with a
   few deliberate hits; online verification of every account with its bank [Art. 12, 18];
4. rosters from two departments, one of them first sent with a typing mistake and refused whole,
   then corrected; validation findings (dead, public employee, over the standard, paid twice) [Art. 18];
5. dispatch, the banks' answers through the ``demo`` scenario (rejections, cross-bank returns, a late
   and a duplicated report, an outage at lunch), time-warped across several working days [Art. 20-22];
6. a summary table, the batch proofs, and the reports: findings, compliance, a public notice [Art. 24-29].
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.calendar import WorkingDayCalendar
from gateway.config import load
from gateway.config.model import HttpsTransport, SftpTransport
from gateway.config.rebase import with_endpoint, with_keys_dir
from gateway.db import make_engine, upgrade
from gateway.privacy import PiiVault
from gateway.service.cycle import GatewayCycle
from gateway.timeutil import local

DEMO_START = dt.datetime(2026, 11, 2, 10, 0)  # Chongqing local time, a Monday


@dataclass
class SimulatedWorld:
    """Simulated banks on loopback, a shared simulated clock, and the gateway cycle pointed at them."""

    cfg: object
    banks: dict
    cycle: GatewayCycle
    rt: object
    clock: object

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.seconds(), dt.timezone.utc).replace(tzinfo=None)

    def run_cycle(self):
        return self.rt.call(self.cycle.run_once)

    def settle(self) -> None:
        for b in self.banks.values():
            b.wait()

    def next_working_day(self) -> None:
        next(iter(self.banks.values())).next_working_day()
        self.settle()

    def advance(self, seconds: float) -> None:
        next(iter(self.banks.values())).advance(seconds)
        self.settle()

    def stop(self) -> None:
        for t in self.cycle.transports.values():
            self.rt.call(t.close)
        for b in self.banks.values():
            b.stop()


def start_world(engine, vault: PiiVault, work: Path, *, config_dir: Path, bank_ids=("cqrcb-fj", "icbc-cq", "psbc-xs"),
                scenario=None, seed: int = 0, bank_roots: Path | None = None) -> SimulatedWorld:
    from twisted.internet import task

    from gateway.transports.base import make_transport
    from simulators.clock import epoch
    from simulators.testing import DEFAULT_START, reactor_thread, start_bank

    keys_dir = work / "keys"
    clock = task.Clock()
    clock.advance(epoch(DEFAULT_START))
    banks = {b: start_bank(b, scenario=scenario, seed=seed, clock=clock, config_dir=config_dir, keys_dir=keys_dir,
                           root=(bank_roots / b) if bank_roots else None) for b in bank_ids}
    cfg = with_keys_dir(load(config_dir), keys_dir)
    for bank_id, rb in banks.items():
        t = cfg.banks[bank_id].transport
        if isinstance(t, SftpTransport):
            cfg = with_endpoint(cfg, bank_id, sftp_port=rb.sftp_port)
        elif isinstance(t, HttpsTransport):
            cfg = with_endpoint(cfg, bank_id, https_url=rb.https_url)
    rt = reactor_thread()
    transports = {b: rt.call(lambda b=b: make_transport(cfg.banks[b], reactor=rt.reactor)) for b in bank_ids}
    world = SimulatedWorld(cfg, banks, None, rt, clock)
    world.cycle = GatewayCycle(reactor=rt.reactor, engine=engine, cfg=cfg, vault=vault,
                               calendar=WorkingDayCalendar.from_dir(cfg.directory / "calendar"),
                               outbox_dir=work / "outbox", inbound_dir=work / "inbound", transports=transports,
                               now=world.now, rng=random.Random(seed))
    return world


# ------------------------------------------------------------------------------------ the demo story


@dataclass
class DemoResult:
    rows: list[dict] = field(default_factory=list)
    refused_roster: str = ""
    paths: dict[str, list[Path]] = field(default_factory=dict)
    exceptions: int = 0
    ok: bool = True


ROSTER_HEADER = ["姓名", "身份证号", "银行账号", "代发银行", "金额", "实施单位"]


def _csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(ROSTER_HEADER)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _verify_accounts(world: SimulatedWorld, engine, vault, checks_by_bank: dict) -> dict:
    from gateway.admin.verification import AccountCheck, BankVerifier, https_client, refresh

    counts: dict[str, int] = {}
    for bank_id, checks in checks_by_bank.items():
        rb = world.banks[bank_id]
        keys = rb.keys

        def make(bank_id=bank_id, rb=rb):
            http = https_client(world.rt.reactor, trust_pem=keys.tls_ca_cert.read_bytes(),
                                client_key_pem=keys.gateway_tls_key.read_bytes(),
                                client_cert_pem=keys.gateway_tls_cert.read_bytes())
            verifier = BankVerifier(bank_id=bank_id, base_url=rb.https_url, http=http, clock=world.clock,
                                    bank_code=world.cfg.banks[bank_id].bank_code)
            return refresh(verifier, lambda: Session(engine), vault,
                           [AccountCheck(bank_id, a, n, i) for n, i, a in checks], now=world.now)
        for k, v in world.rt.call(make).items():
            counts[k] = counts.get(k, 0) + v
    return counts


def run_demo(var_dir: Path, config_dir: Path, *, people: int = 120, seed: int = 7, progress=None) -> DemoResult:
    """Run the story; ``progress(step_text)`` is called as it goes. Returns what the summary needs."""
    from gateway.admin import accounts, lists
    from gateway.intake.roster import RosterRejected
    from gateway.intake.submit import submit_roster
    from simulators.keys import ensure_keys
    from simulators.population import people as make_people

    say = progress or (lambda text: None)
    work = var_dir / "demo"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    url = f"sqlite:///{work / 'yikatong.db'}"
    say("数据库 database")
    upgrade(url)
    engine = make_engine(url)
    say("密钥 keys for the gateway and three banks")
    ensure_keys(work / "keys", load(config_dir))
    key_line = PiiVault.new_key_line("demo")
    (work / "keys" / "pii.keys").write_text(key_line + "\n")
    vault = PiiVault.from_text(key_line)
    result = DemoResult()
    say("模拟银行 starting three simulated banks on loopback")
    world = start_world(engine, vault, work, config_dir=config_dir, scenario="demo", seed=seed,
                        bank_roots=work / "banks")
    try:
        cfg = world.cfg
        now = world.now
        # ------------------------------------------------------------ people, accounts, lists
        say("受益人 registering beneficiaries' own accounts (Art. 10-11)")
        fj_rcb = list(make_people(people, county="500236", seed=seed, bank="cqrcb-fj"))
        fj_icbc = list(make_people(people, county="500236", seed=seed, bank="icbc-cq", start=people))
        xs = list(make_people(people, county="500241", seed=seed, bank="psbc-xs"))
        registered = [(p, "cqrcb-fj", "500236101") for p in fj_rcb] + \
                     [(p, "icbc-cq", "500236102") for p in fj_icbc] + [(p, "psbc-xs", "500241101") for p in xs]
        with Session(engine) as s, s.begin():
            for p, bank, unit in registered:
                accounts.register(s, vault, now=now(), name=p.name, id_number=p.id_number, unit_code=unit,
                                  account=p.account, bank_id=bank, bank_chosen_by_beneficiary=True,
                                  recorded_by=f"unit-{unit}")
        say("名单 importing screening lists (deceased, public employees, supported persons)")
        dead, employee = fj_rcb[4], fj_icbc[6]
        lists_dir = work / "lists"
        lists_dir.mkdir()
        (lists_dir / "deceased.csv").write_text(f"身份证号码,姓名,死亡日期\n{dead.id_number},{dead.name},2026-09-15\n",
                                                encoding="utf-8")
        (lists_dir / "public-employees.csv").write_text(f"身份证号码,姓名\n{employee.id_number},{employee.name}\n",
                                                        encoding="utf-8")
        supported = "身份证号码,姓名\n" + "".join(f"{p.id_number},{p.name}\n" for p in xs[1:])  # xs[0] is not
        (lists_dir / "supported.csv").write_text(supported, encoding="utf-8")
        with Session(engine) as s, s.begin():
            for kind in ("deceased", "public-employees", "supported"):
                lists.import_list(s, vault, kind=kind, path=lists_dir / f"{kind}.csv",
                                  effective_from=dt.date(2026, 1, 1), imported_by="county-finance", now=now())
        say("联网验证 verifying every account online with its bank (acmt.023/024)")
        _verify_accounts(world, engine, vault, {
            "cqrcb-fj": [(p.name, p.id_number, p.account) for p in fj_rcb],
            "icbc-cq": [(p.name, p.id_number, p.account) for p in fj_icbc],
            "psbc-xs": [(p.name, p.id_number, p.account) for p in xs]})

        # ------------------------------------------------------------ rosters
        rng = random.Random(seed)
        gddl = lambda: f"{rng.randrange(300, 1900)}.{rng.randrange(100):02d}"
        rcb_rows = [[p.name, p.id_number, p.account, "cqrcb-fj", gddl(), "500236101"] for p in fj_rcb]
        rcb_rows[8][4] = "2500.00"  # over the 2,000.00 standard
        icbc_rows = [[p.name, p.id_number, p.account, "icbc-cq", gddl(), "500236102"] for p in fj_icbc]
        icbc_rows.append(list(rcb_rows[10][:3]) + ["icbc-cq", "800.00", "500236102"])  # paid twice this period
        tk_rows = [[p.name, p.id_number, p.account, "psbc-xs", "1100.00", "500241101"] for p in xs]
        typo = [list(r) for r in tk_rows]
        typo[5][1] = typo[5][1][:-1] + ("0" if typo[5][1][-1] != "0" else "1")  # a mistyped check digit
        say("名册 submitting rosters; validation (Art. 15-18)")
        with Session(engine) as s, s.begin():
            try:
                submit_roster(s, cfg, vault, data=_csv(typo), source_name="秀山特困-2026-11.csv", policy_code="TK",
                              period="2026-11", submitted_by="xs-mz-clerk", now=now())
            except RosterRejected as e:
                result.refused_roster = e.plain()
        (work / "rosters").mkdir()
        for fname, rows, policy, who in (("奉节耕地地力-农商行-2026-11.csv", rcb_rows, "GDDL", "fj-nync-clerk"),
                                         ("奉节耕地地力-工行-2026-11.csv", icbc_rows, "GDDL", "fj-nync-clerk"),
                                         ("秀山特困-2026-11-更正.csv", tk_rows, "TK", "xs-mz-clerk")):
            data = _csv(rows)
            (work / "rosters" / fname).write_bytes(data)
            with Session(engine) as s, s.begin():
                submit_roster(s, cfg, vault, data=data, source_name=fname, policy_code=policy, period="2026-11",
                              submitted_by=who, now=now())

        # ------------------------------------------------------------ dispatch and the banks' answers
        say("发送 dispatching signed files to the banks; funds arrive (Art. 19-20)")
        _record_funding(engine, cfg, now())
        world.run_cycle()
        world.settle()
        world.run_cycle()
        for day in range(1, 5):
            say(f"第 {day} 个工作日 working day +{day}: banks credit, report, return; the gateway applies")
            world.next_working_day()
            world.advance(4 * 3600)  # past the lunch outage
            world.run_cycle()
        world.run_cycle()
        say("报告 writing the proofs, findings, compliance report and a public notice")
        _summarise(result, engine, cfg, vault, world, work)
    finally:
        world.stop()
        engine.dispose()
    return result


def _record_funding(engine, cfg, now: dt.datetime) -> None:
    """The treasury transfers each batch's total to its bank's disbursement account [Art. 19]."""
    from gateway.db.models import Funding, Item

    with Session(engine) as s, s.begin():
        sums = s.execute(sa.select(Item.bank_id, Item.batch_id, sa.func.sum(Item.amount_fen))
                         .group_by(Item.bank_id, Item.batch_id)).all()
        for bank_id, batch_id, fen in sums:
            s.add(Funding(bank_id=bank_id, batch_id=batch_id, amount_fen=int(fen), received_at=now,
                          value_date=local(now).date(), reference=f"GK{batch_id:06d}{bank_id[:4].upper()}",
                          source="treasury"))


def _summarise(result: DemoResult, engine, cfg, vault, world: SimulatedWorld, work: Path) -> None:
    from gateway.admin import findings as findings_mod
    from gateway.admin.disclosure import build_notice, write_notice, write_policy_list
    from gateway.db.models import Batch, InboundFile, OutboundFile, ReconException
    from reconciliation.compliance import compliance_report, write_report
    from reconciliation.proof import batch_proof

    reports = work / "reports"
    reports.mkdir(exist_ok=True)
    with Session(engine) as s:
        for b in s.scalars(sa.select(Batch).order_by(Batch.id)):
            p = batch_proof(s, b.id)
            result.rows.append({"batch": b.ref, "policy": b.policy_code, "items": b.item_count, **{
                k: getattr(p, k).count for k in ("rejected_by_validation", "held_for_review", "sent", "settled",
                                                 "rejected", "returned", "outstanding")},
                "amount_settled": f"{p.settled.fen / 100:,.2f}", "balances": p.balances,
                "fen": {k: getattr(p, k).fen for k in ("rejected_by_validation", "held_for_review", "sent", "settled",
                                                       "rejected", "returned", "outstanding")}})
            result.ok &= p.balances
            xlsx = reports / f"findings-{b.ref}.xlsx"
            findings_mod.write_xlsx(s, b.id, xlsx)
            html = reports / f"findings-{b.ref}.html"
            html.write_text(findings_mod.render_html(s, b.id), encoding="utf-8")
            result.paths.setdefault("findings", []).extend([xlsx, html])
        result.exceptions = s.scalar(sa.select(sa.func.count()).select_from(ReconException))
        result.paths["outbox"] = [Path(p) for p in s.scalars(sa.select(OutboundFile.path).order_by(OutboundFile.id))]
        result.paths["inbound"] = [Path(p) for p in s.scalars(sa.select(InboundFile.path).order_by(InboundFile.id))]
        today = local(world.now()).date()
        rep = compliance_report(s, cfg, world.cycle.calendar, vault, date_from=dt.date(2026, 11, 1), date_to=today,
                                now=world.now())
        result.paths["compliance"] = write_report(rep, reports / "compliance")
        notice = build_notice(s, cfg, vault, unit="500236101", policy="GDDL", period="2026-11", published_on=today)
        result.paths["notice"] = write_notice(notice, reports / "notice")
    result.paths["policy list"] = write_policy_list(cfg, reports / "policy-list", published_on=today)
