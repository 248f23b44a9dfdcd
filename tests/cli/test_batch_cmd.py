"""`ykt batch submit|show|report|resubmit` as a department clerk uses them [Art. 15-16, 18, 22]."""

import json
import shutil

from click.testing import CliRunner

from gateway.cli.main import cli
from gateway.privacy import PiiVault
from tests.support.gateway import ROOT
from tests.support.rosters import csv_bytes, rows


def run(cfg_dir, db_url, *args):
    return CliRunner().invoke(cli, ["--config", str(cfg_dir), "--db", db_url, *map(str, args)])


def test_submit_show_report_resubmit(tmp_path, db_url):
    cfg_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg_dir)
    text = (cfg_dir / "banks.toml").read_text(encoding="utf-8")
    (cfg_dir / "banks.toml").write_text(text.replace('keys_dir = "../var/keys"', f'keys_dir = "{tmp_path / "keys"}"'),
                                        encoding="utf-8")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "pii.keys").write_text(PiiVault.new_key_line("k1") + "\n")
    body = rows(3)
    body[1][4] = "2500.00"  # over the GDDL standard: rejected by validation
    roster = tmp_path / "roster.csv"
    roster.write_bytes(csv_bytes(body))
    r = run(cfg_dir, db_url, "--json", "batch", "submit", roster, "--policy", "GDDL", "--period", "2026-11", "--by", "li")
    assert r.exit_code == 0, r.output
    ref = json.loads(r.output[r.output.index("{"):])["ref"]
    shown = run(cfg_dir, db_url, "--json", "batch", "show", ref)
    proof = json.loads(shown.output)["proof"]
    assert proof["submitted"]["count"] == 3 and proof["rejected_by_validation"]["count"] == 1
    report = run(cfg_dir, db_url, "batch", "report", ref, "--out", tmp_path / "out")
    assert report.exit_code == 0 and "AMOUNT_OVER_STANDARD" in report.output
    assert (tmp_path / "out" / f"findings-{ref}.xlsx").exists()
    again = run(cfg_dir, db_url, "batch", "submit", roster, "--policy", "GDDL", "--period", "2026-11")
    assert again.exit_code == 1 and "already submitted" in again.output
    fix = tmp_path / "fix.csv"
    fixed = [body[1][:4] + ["1500.00", body[1][5]]]
    fix.write_bytes(csv_bytes([r + ["3"] for r in fixed],
                              header=["姓名", "身份证号", "银行账号", "代发银行", "金额", "实施单位", "原行号"]))
    res = run(cfg_dir, db_url, "batch", "resubmit", ref, "--corrections", fix)
    assert res.exit_code == 0, res.output
    twice = run(cfg_dir, db_url, "batch", "resubmit", ref, "--corrections", fix)
    assert twice.exit_code == 1 and "Traceback" not in twice.output
