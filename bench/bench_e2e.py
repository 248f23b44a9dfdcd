"""End-to-end benchmark (issue 6): a roster of N items through intake, validation, files, the simulated bank
and its reports applied, on SQLite and PostgreSQL.

    python bench/bench_e2e.py [--sizes 10000,100000] [--db sqlite,postgresql] [--full]

``--full`` adds 1,000,000 (``make bench`` runs it: 25 minutes to an hour on a 2-core VM, about half
of it the untimed set-up of a million registered people). Each case runs in a fresh subprocess so
peak memory (ru_maxrss) is its own; the set-up of the registry, which a county has before it pays,
runs in a process of its own too (its peak is reported beside). The bank is the simulator's
core for psbc-xs (pain.001 under CMS signatures; pain.002 and camt.053 back) in its own process, fed each file as
the gateway delivers it: the network is measured by the transport tests, this measures the work.
The gateway's own helpers run as they do in service: xmllint children check long documents against
the XSD, and the report worker reads each long report while the gateway applies it; their CPU (with the
bank's) is reported beside the gateway's. Peak memory is the gateway process's own;
the report worker's is reported beside it.
Stages and sub-stages are timed separately; the end-to-end rate counts every stage.
Targets (:func:`targets_for`): >= 8,000 items/s, peak <= 512 MB, every item accounted for, and time
linear in N (time per item at 1M at most 1.25 x that at 100k). Results: bench/results/e2e.json
and a table of targets met or MISSED; a miss exits 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import time as dt_time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BANK = "psbc-xs"
PG_ADMIN = os.environ.get("YKT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_roster(n: int, path: Path) -> None:
    """The roster of ``n`` synthetic beneficiaries of Xiushan county (TK, 1,100.00 each; every tenth 900.00)."""
    from simulators.population import people

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(["姓名", "身份证号", "银行账号", "代发银行", "金额", "实施单位"])
        for i, p in enumerate(people(n, county="500241", seed=3, bank=BANK)):
            w.writerow([p.name, p.id_number, p.account, BANK, "900.00" if i % 10 == 0 else "1100.00", "500241101"])


def setup_registry(url: str, n: int, vault, now) -> None:
    """What a county has before it pays (not timed): every beneficiary registered with an active account
    [Art. 10-11], the supported-persons list TK requires, a deceased list (0.1 % hits), and every account
    verified online earlier (the cache the rule engine reads) [Art. 12, 18]."""
    import datetime as dt

    import sqlalchemy as sa

    from gateway.admin.models import (Account, AccountEvent, AccountVerification, Beneficiary, ListEntry,
                                      ListImport)
    from gateway.db import make_engine
    from simulators.population import people

    eng = make_engine(url)
    bi, enc = vault.blind_index, vault.encrypt
    with eng.begin() as c:
        c.execute(sa.insert(ListImport), [
            dict(id=1, kind="supported", version=1, effective_from=dt.date(2026, 1, 1), source_name="s.csv",
                 sha256="0" * 64, row_count=n, imported_by="bench", imported_at=now),
            dict(id=2, kind="deceased", version=1, effective_from=dt.date(2026, 1, 1), source_name="d.csv",
                 sha256="1" * 64, row_count=0, imported_by="bench", imported_at=now)])
    rows: dict[str, list] = {k: [] for k in ("ben", "acc", "ev", "ver", "lst")}

    def flush():
        with eng.begin() as c:
            for key, model in (("ben", Beneficiary), ("acc", Account), ("ev", AccountEvent),
                               ("ver", AccountVerification), ("lst", ListEntry)):
                if rows[key]:
                    c.execute(sa.insert(model), rows[key])
                    rows[key].clear()

    for i, p in enumerate(people(n, county="500241", seed=3, bank=BANK)):
        ih, ah, nh = bi("id", p.id_number), bi("account", p.account), bi("name", p.name)
        rows["ben"].append(dict(id=i + 1, id_hash=ih,
                                id_number_enc=enc(p.id_number, "beneficiaries", "id_number_enc", ih),
                                name_enc=enc(p.name, "beneficiaries", "name_enc", ih),
                                name_hash=nh, household_hash=None, unit_code="500241101", registered_by="bench",
                                registered_at=now))
        rows["acc"].append(dict(id=i + 1, beneficiary_id=i + 1, kind="card", bank_id=BANK,
                                account_enc=enc(p.account, "accounts", "account_enc", ah), account_hash=ah,
                                social_security_card=False, bank_chosen_by_beneficiary=True,
                                declaration_ref=None, replaces_account_id=None, declared_at=now, recorded_by="bench"))
        rows["ev"].append(dict(account_id=i + 1, kind="active", by="bench", role="unit", at=now, note=None))
        rows["ver"].append(dict(account_hash=ah, id_hash=ih, name_hash=nh, bank_id=BANK, status="ok",
                                reason_code=None, reason_text=None, checked_at=now,
                                expires_at=now + dt.timedelta(days=30)))
        rows["lst"].append(dict(import_id=1, id_hash=ih, name_enc=enc(p.name, "list_entries", "name_enc", ih),
                                date_of_death=None))
        if i % 1000 == 3:
            rows["lst"].append(dict(import_id=2, id_hash=ih, name_enc=enc(p.name, "list_entries", "name_enc", ih),
                                    date_of_death=dt.date(2026, 5, 1)))
        if len(rows["ben"]) >= 20_000:
            flush()
    flush()
    with eng.begin() as c:
        if eng.dialect.name == "sqlite":
            c.exec_driver_sql("ANALYZE")
        else:
            c.exec_driver_sql("ANALYZE")
    eng.dispose()


def setup_registry_process(url: str, n: int, key_line: str, now) -> float:
    """:func:`setup_registry` run in a pool process; its peak resident memory in MB."""
    from gateway.privacy import PiiVault

    setup_registry(url, n, PiiVault.from_text(key_line), now)
    return _peak_mb()


def bank_worker(conn, work: str, start: float) -> None:
    """The simulated bank in its own process, as a real bank is: it takes each file as the gateway
    delivers it (the simulator's ``BankCore.receive``, exactly as in-process), and on request lets
    four working days pass and hands back its reports. Built from the same keys, scenario and seed."""
    from twisted.internet import task

    from gateway.config import load
    from simulators.keys import ensure_keys
    from simulators.service import build_bank

    work = Path(work)
    clock = task.Clock()
    clock.advance(start)
    keys = ensure_keys(work / "keys", load(ROOT / "config"))
    svc = build_bank(BANK, config=load(ROOT / "config"), keys=keys, root=work / "bank", reactor=None, clock=clock,
                     scenario=work / "s.toml", seed=1)
    core = svc.core
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg[0] == "file":
            _, name, path, sig_path = msg
            staged = core.inbox / f".{name}.part"
            shutil.copyfile(path, staged)
            core.receive(name, staged, Path(sig_path).read_bytes() if sig_path else None)
            conn.send(("taken", name))
        elif msg[0] == "days":
            for _ in range(msg[1]):
                clock.advance(svc.seconds_to_next_working_day(dt_time(9, 0)) + 1)
                core.release_due()
            conn.send(("reports", clock.seconds(), [(nm, str(core.report_path(nm)), core.report_signature(nm))
                                                    for nm in core.list_reports()]))
        else:
            ru = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(("cpu", ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024))
            return


def run_case(n: int, db: str, work: Path) -> dict:
    import datetime as dt

    import sqlalchemy as sa
    from sqlalchemy.orm import Session
    from twisted.internet import task

    from gateway.calendar import DEFAULT_CALENDAR_DIR, WorkingDayCalendar
    from gateway.config import load
    from gateway.config.rebase import with_keys_dir
    from gateway.db import make_engine, upgrade
    from gateway.db.models import InboundFile
    from gateway.dispatch.outbox import claim_due, mark_delivered
    from gateway.dispatch.plan import plan_files
    from gateway.dispatch.render import render_planned
    from gateway.inbound.process import process_inbound
    from gateway.inbound.store import store_inbound
    from gateway.intake.submit import submit_roster
    from gateway.privacy import PiiVault
    from reconciliation.proof import batch_proof
    from simulators.clock import epoch
    from simulators.keys import ensure_keys
    from simulators.testing import DEFAULT_START

    roster = work / "roster.csv"
    make_roster(n, roster)
    ensure_keys(work / "keys", load(ROOT / "config"))  # the gateway's and the bank's keys
    cfg = with_keys_dir(load(ROOT / "config"), work / "keys")
    key_line = PiiVault.new_key_line("bench")
    vault = PiiVault.from_text(key_line)
    if db == "sqlite":
        url = f"sqlite:///{work / 'ykt.db'}"
    else:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"ykt_bench_{os.getpid()}"
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    clock = task.Clock()
    clock.advance(epoch(DEFAULT_START))
    now = lambda: dt.datetime.fromtimestamp(clock.seconds(), dt.timezone.utc).replace(tzinfo=None)
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # what the database holds before (not timed)
        setup_peak = pool.apply(setup_registry_process, (url, n, key_line, now()))
    setup_cpu = _children_cpu()  # the set-up's, left out of the helpers' CPU below
    engine = make_engine(url)
    scenario = work / "s.toml"
    scenario.write_text('[book]\nunknown = "accept"\n[[rule]]\nlabel = "some rejections"\nchance = 0.01\n'
                        'outcome = "reject"\nreason = "AC01"\n')
    bank, child = multiprocessing.get_context("spawn").Pipe()
    bank_proc = multiprocessing.get_context("spawn").Process(target=bank_worker, args=(child, str(work), clock.seconds()))
    bank_proc.start()  # the bank is its own running system before the roster arrives (not timed)
    assert bank.recv() == "ready"
    cal = WorkingDayCalendar.from_dir(DEFAULT_CALENDAR_DIR)
    times, sub = {}, {}
    rss_before = _peak_mb()

    cpu, peak = {}, {}  # CPU seconds by stage; the process's peak memory at the end of each stage
    c0 = time.process_time()
    t0 = time.perf_counter()
    with Session(engine) as s, s.begin():
        r = submit_roster(s, cfg, vault, data=roster.read_bytes(), source_name="roster.csv", policy_code="TK",
                          period="2026-11", submitted_by="bench", now=now())
    times["intake+validation"] = time.perf_counter() - t0
    cpu["intake+validation"], c0 = time.process_time() - c0, time.process_time()
    peak["intake+validation"] = _peak_mb()
    validated = r.validated

    # files and bank, pipelined: the gateway renders file k+1 while the bank (its own process) takes
    # file k; each file is rendered, claimed and marked delivered by the product's own functions
    t = time.perf_counter()
    with Session(engine) as s, s.begin():
        plan_files(s, cfg, now=now(), calendar=cal)
    sub["plan files"] = time.perf_counter() - t
    taken: dict[str, int] = {}

    def delivered(block: bool) -> None:
        while taken and (block or bank.poll()):
            kind, name = bank.recv()
            with Session(engine) as s, s.begin():
                mark_delivered(s, taken.pop(name), now=now())

    while True:
        with Session(engine) as s, s.begin():
            done = render_planned(s, cfg, vault, work / "outbox", limit=1)
        if not done:
            break
        with Session(engine) as s, s.begin():
            claimed = claim_due(s, now=now(), limit=10_000)
        for c in claimed:
            taken[c.name] = c.file_id
            bank.send(("file", c.name, c.path, c.signature_path))
        delivered(block=False)
    delivered(block=True)
    times["files+bank"] = time.perf_counter() - t
    cpu["files+bank"], c0 = time.process_time() - c0, time.process_time()
    peak["files+bank"] = _peak_mb()

    t = time.perf_counter()
    bank.send(("days", 4))  # four working days of reports
    _, seconds, reports = bank.recv()
    sub["bank writes its reports"] = time.perf_counter() - t
    clock.advance(seconds - clock.seconds())
    names = [nm for nm, _p, _s in reports]
    t_apply = time.perf_counter()
    with Session(engine) as s, s.begin():
        rows = [store_inbound(s, bank_id=BANK, name=nm, data=Path(path).read_bytes(), signature=sig,
                              inbound_dir=work / "inbound", now=now())[0].id
                for nm, path, sig in reports]
    for row_id in rows:
        with Session(engine) as s, s.begin():
            process_inbound(s, cfg, s.get(InboundFile, row_id), vault=vault, now=now())
    times["reports applied"] = time.perf_counter() - t
    sub["store and apply reports"] = time.perf_counter() - t_apply
    cpu["reports applied"] = time.process_time() - c0
    peak["reports applied"] = _peak_mb()
    bank.send(("stop",))
    _, bank_cpu, bank_rss = bank.recv()
    bank_proc.join()
    from gateway.inbound.report_worker import WORKER

    worker_peak = _peak_rss_mb(WORKER.pid)
    WORKER.stop()  # reaped, so that its CPU shows among the children's
    total = sum(times.values())
    with Session(engine) as s:
        p = batch_proof(s, r.batch_id)
        refused = s.scalar(sa.select(sa.func.count()).select_from(InboundFile).where(InboundFile.status != "applied"))
    engine.dispose()
    if db != "sqlite":
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return {"n": n, "db": db, "stages_s": {k: round(v, 2) for k, v in times.items()}, "total_s": round(total, 2),
            "substages_s": {k: round(v, 2) for k, v in sub.items()},
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()}, "bank_process_cpu_s": round(bank_cpu, 2),
            "bank_process_peak_rss_mb": round(bank_rss, 1), "load_avg": round(os.getloadavg()[0], 2),
            "items_per_s": round(n / total), "validated": validated, "sent": p.sent.count,
            "settled": p.settled.count, "rejected": p.rejected.count, "outstanding": p.outstanding.count,
            "balances": p.balances, "reports": len(names), "reports_refused": refused,
            "findings_rejected": n - validated - 0, "peak_rss_mb": _peak_mb(),
            "peak_rss_before_intake_mb": rss_before, "peak_rss_after_stage_mb": peak, "setup_process_peak_rss_mb": setup_peak,
            "helpers_cpu_s": round(_children_cpu() - setup_cpu, 2), "report_worker_peak_rss_mb": worker_peak}


def _peak_mb() -> float:
    """This process's peak resident memory so far, MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _peak_rss_mb(pid: int | None) -> float | None:
    """A live process's peak resident memory (VmHWM), or None."""
    try:
        line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmHWM:"))
    except (OSError, StopIteration, TypeError):
        return None
    return round(int(line.split()[1]) / 1024, 1)


TARGET_RATE, TARGET_MB, LINEAR = 8000, 512, 1.25  # items/s each size; MB; per-item time growth 100k -> 1M


def targets_for(results: list[dict]):
    """Issue 6's targets: every case at least ``TARGET_RATE`` items/s end to end and at most ``TARGET_MB``
    peak; the books balance (sent = settled + rejected + outstanding) in every case; and time linear in N:
    per database, the time per item at 1M at most ``LINEAR`` times the time per item at 100k."""
    from bench.targets import at_least, at_most, equals

    out = []
    for r in results:
        case = f"{r['db']} {r['n']:,}"
        ok = "error" not in r
        out += [at_least(f"{case}: end to end", r.get("items_per_s") if ok else 0, TARGET_RATE, "items/s"),
                at_most(f"{case}: peak memory", r.get("peak_rss_mb") if ok else float("inf"), TARGET_MB, "MB"),
                equals(f"{case}: every item accounted for", r.get("balances") if ok else False, True)]
    for db in sorted({r["db"] for r in results}):
        by_n = {r["n"]: r for r in results if r["db"] == db and "error" not in r}
        growth = None
        if 100_000 in by_n and 1_000_000 in by_n:
            growth = round((by_n[1_000_000]["total_s"] / 1_000_000) / (by_n[100_000]["total_s"] / 100_000), 2)
        out.append(at_most(f"{db}: time per item, 1M / 100k", growth, LINEAR, "x"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--full", action="store_true", help="also 1,000,000 (make bench runs it)")
    ap.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        n, db = int(args.case[0]), args.case[1]
        with tempfile.TemporaryDirectory(prefix="ykt-e2e-") as tmp:
            print(json.dumps(run_case(n, db, Path(tmp))))
        return 0
    sizes = [int(x) for x in args.sizes.split(",")] + ([1_000_000] if args.full else [])
    from bench.run import machine, reference_workload

    here = machine()
    print(f"machine: {here['cores']} x {here.get('cpu')}, reference workload {here['reference_workload_s']} s",
          flush=True)
    results = []
    for db in args.db.split(","):
        for n in sizes:
            out = subprocess.run([sys.executable, __file__, "--case", str(n), db], capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                results.append({"n": n, "db": db, "error": out.stderr[-500:]})
                continue
            res = json.loads(out.stdout.strip().splitlines()[-1])
            # measured again after each case: a VM can slow down in the middle of a run
            res["reference_workload_after_s"] = reference_workload()
            results.append(res)
            print(f"{db:<11}{n:>9}  {res['total_s']:>8.1f}s  {res['items_per_s']:>7}/s  peak {res['peak_rss_mb']:>6} MB  "
                  f"balances={res['balances']}  {res['stages_s']}  reference after {res['reference_workload_after_s']} s",
                  flush=True)
    from bench.targets import finish

    return finish("e2e", targets_for(results), {"machine": here, "results": results}, ROOT / "bench" / "results" / "e2e.json")


if __name__ == "__main__":
    sys.exit(main())
