"""Screening-list imports [Art. 18] (versioned, atomic, every bad row named), findings reports for
the department and review decisions, and the CLI on top of them."""

from __future__ import annotations

import datetime as dt
import json

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gateway.admin import findings, lists
from gateway.admin.lists import ListImportError
from gateway.admin.models import ListEntry, ListImport
from gateway.cli.main import cli
from gateway.db.models import Finding
from gateway.privacy import PiiVault
from vhelp import NOW, card, earlier_batch, rid


def write_csv(path, header, rows):
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def test_import_csv_and_xlsx_versions(session, vault, tmp_path):
    """Each import is the next version of its list, with an effective date; names encrypted."""
    a, b = rid(), rid()
    r1 = lists.import_list(session, vault, kind="deceased", path=write_csv(
        tmp_path / "d.csv", ["姓名", "身份证号码", "死亡日期"], [["陈大爷", a, "2026-08-15"]]),
        effective_from=dt.date(2026, 9, 1), imported_by="民政局-赵", now=NOW)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["序号", "姓名", "身份证号码", "死亡日期"])
    ws.append([1, "陈大爷", a, dt.datetime(2026, 8, 15)])
    ws.append([2, "周奶奶", b, dt.datetime(2026, 10, 2)])
    wb.save(tmp_path / "d.xlsx")
    r2 = lists.import_list(session, vault, kind="deceased", path=tmp_path / "d.xlsx", effective_from=dt.date(2026, 11, 1),
                           imported_by="民政局-赵", now=NOW)
    assert (r1.version, r1.rows, r2.version, r2.rows) == (1, 1, 2, 2)
    e = session.scalars(sa.select(ListEntry).where(ListEntry.import_id == r2.import_id).order_by(ListEntry.id)).all()
    assert e[1].id_hash == vault.blind_index("id", b) and e[1].date_of_death == dt.date(2026, 10, 2)
    assert vault.read(e[1], "name_enc") == "周奶奶" and "周奶奶".encode() not in e[1].name_enc


def test_bad_rows_all_reported_and_nothing_imported(session, vault, tmp_path):
    """A list with bad rows is refused whole; each problem names row, column and value."""
    good = rid()
    path = write_csv(tmp_path / "bad.csv", ["姓名", "身份证号码", "死亡日期"], [
        ["陈大爷", good, "2026-08-15"],
        ["李四", "500236199002310018", "2026-08-15"],  # 31 February
        ["王五", rid(), "2026-13-01"],  # no such date
        ["", rid(), "2026-01-01"],  # no name
        ["陈大爷", good, "2026-08-15"],  # twice
        ["孙六", rid(), "2027-01-01"],  # in the future
    ])
    with pytest.raises(ListImportError) as e:
        lists.import_list(session, vault, kind="deceased", path=path, effective_from=dt.date(2026, 1, 1),
                          imported_by="x", now=NOW)
    got = [(p.row, p.column) for p in e.value.problems]
    assert got == [(3, "身份证号码"), (4, "死亡日期"), (5, "姓名"), (6, "身份证号码"), (7, "死亡日期")]
    assert "2026-13-01" in str(e.value) and "ID_BIRTH_DATE" in str(e.value) and "row 6" in str(e.value)
    assert "500236199002310018" not in str(e.value)  # the ID is masked even in the error
    assert session.scalar(sa.select(sa.func.count()).select_from(ListImport)) == 0


def test_missing_column_and_numeric_id_in_excel(session, vault, tmp_path):
    with pytest.raises(ListImportError, match="死亡日期"):
        lists.import_list(session, vault, kind="deceased", path=write_csv(tmp_path / "x.csv", ["姓名", "身份证号码"], []),
                          effective_from=dt.date(2026, 1, 1), imported_by="x", now=NOW)
    wb = openpyxl.Workbook()
    wb.active.append(["姓名", "身份证号码"])
    wb.active.append(["黄科员", 500236196503121234])
    wb.save(tmp_path / "p.xlsx")
    with pytest.raises(ListImportError, match="as a number"):
        lists.import_list(session, vault, kind="public-employees", path=tmp_path / "p.xlsx",
                          effective_from=dt.date(2026, 1, 1), imported_by="x", now=NOW)


def _batch_with_findings(session, vault):
    bid = earlier_batch(session, vault, "DB", "2026-11", [("张三", rid(), card()), ("李四", rid(), card())])
    items = session.execute(sa.text("select id from items where batch_id = :b order by seq"), {"b": bid}).scalars().all()
    rows = [dict(batch_id=bid, item_id=items[0], code="ACCOUNT_NOT_VERIFIED", severity="review",
                 message_zh="无法与银行核验账户 ***9012：银行暂时无法核验（HTTP 503）",
                 message_en="could not verify the account ***9012 with the bank: the bank was unavailable (HTTP 503)",
                 evidence=json.dumps({"account": "***9012"}), at=NOW),
            dict(batch_id=bid, item_id=items[1], code="ON_DECEASED_LIST", severity="reject",
                 message_zh="500236********1234 已于 2026-08-15 死亡，不得发放 2026-11 的补贴 <b>",
                 message_en="died", evidence=json.dumps({"id": "500236********1234"}), at=NOW)]
    session.execute(sa.insert(Finding), rows)
    ids = session.execute(sa.select(Finding.id).where(Finding.batch_id == bid).order_by(Finding.id)).scalars().all()
    return bid, ids


def test_review_decisions_are_recorded_append_only(session, vault):
    """Review findings are cleared or confirmed by a person (who, when, note); the latest counts."""
    bid, (review, reject) = _batch_with_findings(session, vault)
    with pytest.raises(findings.DecisionError, match="reject"):
        findings.decide(session, finding_id=reject, decision="cleared", by="民政局-钱", now=NOW, note="x")
    with pytest.raises(findings.DecisionError, match="note"):
        findings.decide(session, finding_id=review, decision="cleared", by="民政局-钱", now=NOW)
    findings.decide(session, finding_id=review, decision="confirmed", by="民政局-钱", now=NOW, note="银行维护")
    findings.decide(session, finding_id=review, decision="cleared", by="民政局-孙", now=NOW + dt.timedelta(hours=2),
                    note="银行恢复后人工核验一致")
    v = findings.batch_findings(session, bid)
    assert (v[0].decision, v[0].decided_by, v[0].note) == ("cleared", "民政局-孙", "银行恢复后人工核验一致")
    assert v[1].decision is None
    n = session.execute(sa.text("select count(*) from finding_decisions")).scalar()
    assert n == 2


def test_findings_as_xlsx_and_html(session, vault, tmp_path):
    """The department gets the findings as Excel and HTML (escaped, masked)."""
    bid, _ = _batch_with_findings(session, vault)
    assert findings.write_xlsx(session, bid, tmp_path / "f.xlsx") == 2
    ws = openpyxl.load_workbook(tmp_path / "f.xlsx").active
    assert ws["B3"].value == "ACCOUNT_NOT_VERIFIED" and ws["A3"].value == 1 and "HTTP 503" in ws["D3"].value
    html = findings.render_html(session, bid)
    assert "ON_DECEASED_LIST" in html and "&lt;b&gt;" in html and "<b>" not in html.split("<body>")[1]


def test_cli_register_change_approve_confirm_show_and_lists(db_url, tmp_path, monkeypatch):
    """`ykt accounts …` and `ykt lists import` end to end, masked output by default."""
    monkeypatch.setenv("YKT_PII_KEY", PiiVault.new_key_line("cli"))
    run = CliRunner().invoke
    idn, a1, a2 = rid(), card(), card()
    base = ["--db", db_url]
    r = run(cli, base + ["accounts", "register", "--name", "欧阳小明", "--id", idn, "--unit", "500236101",
                         "--account", a1, "--bank", "cqrcb-fj", "--chosen-by-beneficiary", "--by", "刘会计"])
    assert r.exit_code == 0, r.output
    r = run(cli, base + ["accounts", "register", "--name", "张三", "--id", rid(), "--unit", "500236101",
                         "--account", card(), "--bank", "cqrcb-fj", "--by", "刘会计"])
    assert r.exit_code == 1 and "第十条" in r.output
    r = run(cli, base + ["--json", "accounts", "change", "--id", idn, "--account", a2, "--bank", "icbc-cq",
                         "--chosen-by-beneficiary", "--by", "刘会计"])
    assert r.exit_code == 0, r.output
    new_id = json.loads(r.output)["account_id"]
    assert run(cli, base + ["accounts", "approve", str(new_id), "--by", "王镇长"]).exit_code == 0
    assert run(cli, base + ["accounts", "confirm", str(new_id), "--by", "陈科长"]).exit_code == 0
    r = run(cli, base + ["accounts", "show", "--id", idn])
    assert r.exit_code == 0 and "superseded" in r.output and "欧**明" in r.output
    assert a1 not in r.output and a2 not in r.output and idn not in r.output
    path = write_csv(tmp_path / "pe.csv", ["姓名", "身份证号码"], [["黄科员", rid()]])
    r = run(cli, base + ["lists", "import", "public-employees", str(path), "--effective-from", "2026-01-01", "--by", "x"])
    assert r.exit_code == 0 and "version 1" in r.output, r.output
    bad = write_csv(tmp_path / "bad.csv", ["姓名", "身份证号码"], [["黄科员", "12345"]])
    r = run(cli, base + ["lists", "import", "public-employees", str(bad), "--by", "x"])
    assert r.exit_code == 1 and "row 2" in r.output and "nothing imported" in r.output


def test_findings_export_shows_the_proxy_masked(session, vault, cfg, tmp_path):
    """Art. 13: an item paid through a proxy shows the proxy 代领人 in the department's findings (XLSX
    and HTML), masked; without the key only that it is paid by proxy."""
    from gateway.intake.submit import submit_roster
    from tests.support.rosters import HEADER, csv_bytes

    def valid(cands, **kw):
        for c in cands:
            yield c, []

    roster = csv_bytes([["李老汉", rid(), card(), "icbc-cq", "300.00", "500236101", "李大明", rid("500236", "19700101")],
                        ["王芳", rid(), card(), "icbc-cq", "300.00", "500236101", "", ""]],
                       HEADER + ["代领人姓名", "代领人身份证号"])
    bid = submit_roster(session, cfg, vault, data=roster, source_name="p.csv", policy_code="GDDL", period="2026-12",
                        submitted_by="clerk", now=NOW, validator=valid).batch_id
    items = session.execute(sa.text("select id from items where batch_id = :b order by seq"), {"b": bid}).scalars().all()
    session.execute(sa.insert(Finding), [dict(batch_id=bid, item_id=i, code="SHARED_ACCOUNT", severity="review",
                                              message_zh="x", message_en="x", evidence="{}", at=NOW) for i in items])
    assert findings.write_xlsx(session, bid, tmp_path / "f.xlsx", vault) == 2
    ws = openpyxl.load_workbook(tmp_path / "f.xlsx").active
    assert ws["K2"].value == "代领人 Proxy" and (ws["K3"].value, ws["K4"].value) == ("李*明", None)
    html = findings.render_html(session, bid, vault)
    assert "李*明" in html and "李大明" not in html
    assert [v.proxy for v in findings.batch_findings(session, bid)] == ["代领 by proxy", None]


def test_finding_decisions_cannot_be_updated_or_deleted(engine, vault):
    """Art. 18: a decision on a review finding is kept forever (a new decision is a new row); the
    database itself refuses UPDATE and DELETE on finding_decisions (migration 0002)."""
    from sqlalchemy.exc import DBAPIError, IntegrityError
    from sqlalchemy.orm import Session

    from gateway.admin.models import FindingDecision

    with Session(engine) as s, s.begin():
        _bid, (review, _reject) = _batch_with_findings(s, vault)
        findings.decide(s, finding_id=review, decision="confirmed", by="民政局-钱", now=NOW, note="银行维护")
    for stmt in (sa.update(FindingDecision).values(decision="cleared"), sa.delete(FindingDecision)):
        with Session(engine) as s:
            with pytest.raises((IntegrityError, DBAPIError)):
                s.execute(stmt)
                s.commit()
    with Session(engine) as s:
        assert s.execute(sa.select(FindingDecision.decision)).scalars().all() == ["confirmed"]


def test_cli_findings_decide(db_url, monkeypatch):
    """Art. 18: `ykt findings decide` records who cleared or confirmed a review finding, refuses a
    reject finding and a clearing without a note, in plain words, and writes the audit trail."""
    from sqlalchemy.orm import Session

    from gateway.db import make_engine

    line = PiiVault.new_key_line("cli")
    monkeypatch.setenv("YKT_PII_KEY", line)
    engine = make_engine(db_url)
    with Session(engine) as s, s.begin():
        _bid, (review, reject) = _batch_with_findings(s, PiiVault.from_text(line))
    run = CliRunner().invoke
    base = ["--db", db_url]
    r = run(cli, base + ["findings", "decide", str(reject), "cleared", "--by", "民政局-钱", "--note", "x"])
    assert r.exit_code == 1 and "拒绝" in r.output and "Art. 16" in r.output and "Traceback" not in r.output
    r = run(cli, base + ["findings", "decide", str(review), "cleared", "--by", "民政局-钱"])
    assert r.exit_code == 1 and "放行须注明核实情况" in r.output
    r = run(cli, base + ["--json", "findings", "decide", str(review), "confirmed", "--by", "民政局-钱", "--note", "银行维护"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["decision"] == "confirmed"
    with Session(engine) as s:
        assert s.execute(sa.text("select decision, by from finding_decisions")).all() == [("confirmed", "民政局-钱")]
        assert s.execute(sa.text("select actor, subject from audit_log where action = 'finding.confirmed'")).all() == [
            ("民政局-钱", f"finding:{review}")]
    engine.dispose()
