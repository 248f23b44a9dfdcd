"""`ykt demo` end to end: its summary must match what the demo scenario says each bank does with each item."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

from gateway.cli.main import cli
from gateway.db import make_engine
from gateway.db.models import Batch, Item, OutboundFile, OutboundFileItem
from gateway.demo import run_demo
from gateway.privacy import PiiVault
from reconciliation.apply import latest_states
from simulators.scenario import ItemFacts, Scenario

ROOT = Path(__file__).resolve().parents[2]


def expected_state(decision) -> str:
    if decision.status == "RJCT":
        return "rejected_by_bank"
    return "returned" if decision.return_days else "settled"


def test_demo_matches_the_scenario(tmp_path):
    result = run_demo(tmp_path, ROOT / "config", people=40, seed=7)
    assert result.ok and len(result.rows) == 3
    assert "校验位错误" in result.refused_roster  # the mistyped roster was refused whole
    by_batch = {r["batch"]: r for r in result.rows}
    assert sum(r["rejected_by_validation"] for r in result.rows) == 5  # dead, employee, over standard, twice, not supported
    work = tmp_path / "demo"
    vault = PiiVault.from_text((work / "keys" / "pii.keys").read_text())
    engine = make_engine(f"sqlite:///{work / 'yikatong.db'}")
    scenarios = {}
    mismatches, checked = [], 0
    with Session(engine) as s:
        files = s.scalars(sa.select(OutboundFile).order_by(OutboundFile.id)).all()
        for f in files:
            sc = scenarios.setdefault(f.bank_id, Scenario.load("demo"))  # one stateful instance per bank, in order
            rows = s.execute(sa.select(OutboundFileItem.seq_in_file, Item).join(Item, Item.id == OutboundFileItem.item_id)
                             .where(OutboundFileItem.file_id == f.id).order_by(OutboundFileItem.seq_in_file)).all()
            states = latest_states(s, [i.id for _, i in rows])
            flat = f.name.endswith(".txt")  # the rcb_pipe layout carries no EndToEndId: the bank sees the sequence
            for seq, item in rows:
                facts = ItemFacts(f.msg_id, f.name, seq, str(seq) if flat else item.end_to_end_id, vault.read(item, "account_enc"),
                                  vault.read(item, "name_enc"), vault.read(item, "id_number_enc"),
                                  Decimal(item.amount_fen) / 100)
                want = expected_state(sc.decide_item(facts, seed=7))
                checked += 1
                if states[item.id] != want:
                    mismatches.append((f.bank_id, seq, states[item.id], want))
        for b in s.scalars(sa.select(Batch)):
            row = by_batch[b.ref]
            assert row["sent"] == row["settled"] + row["rejected"] + row["returned"] + row["outstanding"]
    engine.dispose()
    assert checked == sum(r["sent"] for r in result.rows) and not mismatches, mismatches
    assert sum(r["returned"] for r in result.rows) >= 2 and sum(r["rejected"] for r in result.rows) >= 1
    for kind in ("findings", "compliance", "notice", "policy list"):
        assert result.paths[kind] and all(p.exists() for p in result.paths[kind])


def test_demo_command_prints_a_summary(tmp_path):
    out = CliRunner().invoke(cli, ["demo", "--var", str(tmp_path), "--people", "15"])
    assert out.exit_code == 0, out.output
    assert "batch proof" in out.output and "OK in" in out.output and "var" not in out.output.split("OK in")[0][-3:]
