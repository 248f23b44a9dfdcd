"""The unified policy list 政策清单 is published as HTML and CSV with every field a citizen needs
[Art. 26-27: 补贴依据, 政策清单, 申报指南, 咨询投诉渠道]."""

import csv
import datetime as dt
import io

from click.testing import CliRunner

from gateway.admin.disclosure import (POLICY_COLUMNS, policy_list_rows, render_policy_list_csv,
                                      render_policy_list_html)
from gateway.cli.main import cli
from gateway.config import load

ON = dt.date(2026, 12, 1)


def test_every_policy_and_every_field_is_in_the_html(config_dir):
    cfg = load(config_dir)
    html = render_policy_list_html(cfg, published_on=ON)
    for _, zh in POLICY_COLUMNS:
        assert f"<th scope=\"col\">{zh}</th>" in html
    for p in cfg.policies.values():
        for value in (p.code, p.name, p.beneficiaries, f"{p.standard:.2f}", p.basis, p.guide, p.hotline,
                      cfg.departments[p.department].name, str(p.disclosure.publish_days)):
            assert value.replace("&", "&amp;") in html, value
    assert "按年" in html and "按月" in html and "2026年12月01日" in html


def test_csv_round_trips_to_the_config(config_dir):
    cfg = load(config_dir)
    data = render_policy_list_csv(cfg)
    assert data.startswith("\ufeff".encode("utf-8")) and b"\r\n" in data
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0] == [zh for _, zh in POLICY_COLUMNS]
    by_code = {r[0]: dict(zip([k for k, _ in POLICY_COLUMNS], r)) for r in table[1:]}
    assert set(by_code) == set(cfg.policies)
    for code, p in cfg.policies.items():
        row = by_code[code]
        assert (row["name"], row["beneficiaries"], row["basis"], row["guide"], row["hotline"]) == \
            (p.name, p.beneficiaries, p.basis, p.guide, p.hotline)
        assert row["standard"] == f"{p.standard:.2f}"
        assert row["channels"] == "、".join(p.disclosure.channels)
    assert [r for r in policy_list_rows(cfg)] == [by_code[c] for c in sorted(by_code)]


def test_cli_writes_both(tmp_path, config_dir):
    r = CliRunner().invoke(cli, ["--config", str(config_dir), "disclose", "policy-list", "--out", str(tmp_path),
                                 "--on", "2026-12-01"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "policy-list.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    assert (tmp_path / "policy-list.csv").stat().st_size > 200
