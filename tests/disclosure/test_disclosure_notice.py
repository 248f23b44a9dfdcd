"""Payment notices 公示 per implementation unit, policy and period [Art. 28; Art. 25 隐私保护规范]:
masked names, ID numbers and accounts, amount, date, the complaint channel and the publication
period; HTML for the website, PDF with an embedded Chinese font for the notice board."""

import datetime as dt
import re
import subprocess
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from gateway import audit
from gateway.admin.disclosure import DisclosureError, build_notice, render_notice_html, render_notice_pdf
from gateway.cli.main import cli
from gateway.privacy import KEY_ENV, MaskingRules
from tests.support.tools import require_tool
from disclosure_paid import key_line, paid, pii_vault, signing_keys  # noqa: F401 - fixtures

ON = dt.date(2026, 12, 1)


def notice(engine, paid, **kw):
    args = dict(unit="500236101", policy="GDDL", period="2026-11", published_on=ON)
    args.update(kw)
    with Session(engine) as s:
        return build_notice(s, paid.cfg, paid.vault, **args)


def _plaintexts(paid):
    return [v for r in paid.body for v in r[:3]]


def test_notice_lists_the_settled_payments_masked(engine, paid):
    n = notice(engine, paid)
    r = MaskingRules()
    assert [(ln.no, ln.name, ln.id_number, ln.account) for ln in n.lines] == [
        (i + 1, r.name(paid.body[k][0]), r.id(paid.body[k][1]), r.account(paid.body[k][2]))
        for i, k in enumerate(paid.settled)]
    assert n.lines[0].name == "张*" and n.lines[0].id_number.startswith("500236********")
    assert all(ln.amount == Decimal("1500.00") and ln.paid_on == dt.date(2026, 11, 3) for ln in n.lines)
    assert (n.count, n.total) == (4, Decimal("6000.00"))
    # publication period: publish_days = 7 calendar days, both ends included
    assert (n.publish_from, n.publish_to) == (dt.date(2026, 12, 1), dt.date(2026, 12, 7))
    assert n.hotline == "023-56551234" and n.unit_name == "奉节县永乐镇人民政府"


def test_html_carries_period_hotline_and_no_plaintext(engine, paid):
    html = render_notice_html(notice(engine, paid))
    assert "2026年12月01日" in html and "2026年12月07日" in html and "023-56551234" in html
    assert "奉节县永乐镇人民政府2026年11月耕地地力保护补贴发放情况公示" in html
    assert "6,000.00" in html and "张*" in html and "杨*英" not in html  # outstanding item not listed
    assert [v for v in _plaintexts(paid) if v in html] == []


def test_rejected_and_outstanding_payments_can_be_listed_on_request(engine, paid):
    n = notice(engine, paid, states=("settled", "rejected_by_bank", "sent"))
    assert n.count == 6


def test_other_unit_or_period_gets_nothing(engine, paid):
    assert notice(engine, paid, unit="500236102").count == 0
    assert notice(engine, paid, period="2026-10").count == 0


@pytest.mark.parametrize("kw, msg", [({"unit": "999"}, "unknown implementation unit"),
                                     ({"policy": "NOPE"}, "unknown policy"),
                                     ({"policy": "TK"}, "not run in the county")])
def test_refused_for_unknown_or_foreign(engine, paid, kw, msg):
    with pytest.raises(DisclosureError, match=msg):
        notice(engine, paid, **kw)


def test_pdf_embeds_a_chinese_font_subset(engine, paid, tmp_path):
    pdf = render_notice_pdf(notice(engine, paid))
    assert pdf.startswith(b"%PDF-")
    assert re.search(rb"/FontFile[23]?", pdf) and re.search(rb"/BaseFont\s*/[A-Z]{6}\+Noto", pdf)
    assert len(pdf) < 400_000  # a subset, not the 20 MB font
    pdftotext = require_tool("pdftotext")
    path = tmp_path / "n.pdf"
    path.write_bytes(pdf)
    text = subprocess.run([pdftotext, "-layout", str(path), "-"], capture_output=True, check=True).stdout.decode()
    assert "耕地地力保护补贴发放情况公示" in text and "咨询/举报电话：023-56551234" in text and "张*" in text
    assert "2026年12月07日" in text
    assert [v for v in _plaintexts(paid) if v in text] == []


def test_cli_writes_html_and_pdf_and_audits(engine, paid, db_url, tmp_path, monkeypatch, key_line, config_dir):
    monkeypatch.setenv(KEY_ENV, key_line)
    monkeypatch.setenv(audit.KEY_ENV, audit.AuditKeys.new_key_line("a1"))
    r = CliRunner().invoke(cli, ["--db", db_url, "--config", str(config_dir), "disclose", "notice",
                                 "--unit", "500236101", "--policy", "GDDL", "--period", "2026-11",
                                 "--on", "2026-12-01", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "4 payments, 6,000.00 yuan" in r.output
    stem = tmp_path / "notice-500236101-GDDL-2026-11"
    assert stem.with_suffix(".html").exists() and stem.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    with Session(engine) as s:
        # the fixture's batch submission and dispatch are audited too; the notice is one entry of its own
        (entry,) = [e for e in audit.entries(s) if e.action.startswith("disclosure.")]
        assert (entry.action, entry.subject) == ("disclosure.published", "notice:500236101:GDDL:2026-11")
        assert entry.detail_dict["publish_to"] == "2026-12-07"
