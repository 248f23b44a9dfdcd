"""Beneficiaries and one-card accounts [Art. 10-14]: self-declared, one per kind, changes in three
steps with who and when, the old account superseded and kept, proxies approved."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.admin import accounts
from gateway.admin.accounts import AccountError
from gateway.admin.models import Account, AccountEvent, Beneficiary
from vhelp import NOW, card, rid

KW = dict(unit_code="500236101", bank_id="cqrcb-fj", recorded_by="永乐镇-刘会计")


def reg(session, vault, idn, acct, **kw):
    args = {**KW, "name": "张三", "bank_chosen_by_beneficiary": True, **kw}
    return accounts.register(session, vault, now=NOW, id_number=idn, account=acct, **args)


def test_register_stores_encrypted_and_shows_masked(session, vault):
    """Art. 10-11: personal data encrypted with a blind index; shown masked by default; the
    social-security-card account is flagged."""
    idn, acct = rid(), card()
    a = reg(session, vault, idn, acct, name="欧阳小明", social_security_card=True)
    b = session.get(Beneficiary, a.beneficiary_id)
    assert idn.encode() not in b.id_number_enc and vault.read(b, "id_number_enc") == idn
    assert a.account_hash == vault.blind_index("account", acct) and acct.encode() not in a.account_enc
    v = accounts.show(session, vault, idn)
    assert v.name == "欧**明" and v.id_number == idn[:6] + "********" + idn[-4:]
    assert v.accounts[0].account.endswith(acct[-4:]) and "*" in v.accounts[0].account
    assert v.accounts[0].state == "active" and v.accounts[0].social_security_card
    assert [h[0] for h in v.accounts[0].history] == ["declared", "active"]
    assert accounts.show(session, vault, idn, reveal=True).accounts[0].account == acct


@pytest.mark.parametrize("case,kwargs,message", [
    ("bank imposed", {"bank_chosen_by_beneficiary": False}, "Art. 10"),
    ("bad ID", {"id_number": "500236199002310018"}, "ID_BIRTH_DATE"),
    ("bad account", {"account": "62170001234"}, "CARD_LENGTH"),
    ("bad kind", {"kind": "wallet"}, "card"),
])
def test_register_refusals(session, vault, case, kwargs, message):
    """Art. 10: nobody may assign a bank; IDs and account numbers must be plausible."""
    args = {"id_number": rid(), "account": card(), **kwargs}
    with pytest.raises(AccountError) as e:
        reg(session, vault, args.pop("id_number"), args.pop("account"), **args)
    assert message in str(e.value) and e.value.zh


def test_one_person_one_card_per_kind_and_one_card_one_person(session, vault):
    """Art. 10 一人一卡（折）: a second card is a change, not a registration; a passbook may
    coexist; an account number already used by someone else is refused."""
    idn, acct = rid(), card()
    reg(session, vault, idn, acct)
    with pytest.raises(AccountError, match="change of account"):
        reg(session, vault, idn, card())
    reg(session, vault, idn, "500236010012345", kind="passbook")
    with pytest.raises(AccountError, match="another person"):
        reg(session, vault, rid(), acct)


def test_change_approve_confirm_supersedes_and_keeps_history(session, vault):
    """Art. 14: re-declared by the person, approved by the unit, confirmed by county finance;
    each step with who and when; the old account superseded, never deleted."""
    idn, old_acct, new_acct = rid(), card(), card()
    old = reg(session, vault, idn, old_acct)
    new = accounts.change(session, vault, now=NOW, id_number=idn, account=new_acct, bank_id="icbc-cq",
                          bank_chosen_by_beneficiary=True, recorded_by="永乐镇-刘会计")
    assert accounts.account_state(session, old.id) == "active"  # until confirmed
    with pytest.raises(AccountError, match="must be approved"):
        accounts.confirm(session, now=NOW, account_id=new.id, by="县财政局-陈科长")
    accounts.approve(session, now=NOW, account_id=new.id, by="永乐镇-王镇长")
    with pytest.raises(AccountError, match="another person"):
        accounts.confirm(session, now=NOW, account_id=new.id, by="永乐镇-王镇长")
    accounts.confirm(session, now=NOW, account_id=new.id, by="县财政局-陈科长")
    assert accounts.account_state(session, old.id) == "superseded"
    assert accounts.account_state(session, new.id) == "active"
    v = accounts.show(session, vault, idn)
    assert [a.state for a in v.accounts] == ["superseded", "active"] and v.accounts[1].replaces_account_id == old.id
    assert [(h[0], h[1], h[2]) for h in v.accounts[1].history] == [
        ("declared", "beneficiary", "beneficiary"), ("approved", "永乐镇-王镇长", "unit"),
        ("active", "县财政局-陈科长", "county-finance")]
    assert session.scalar(sa.select(sa.func.count()).select_from(Account)) == 2


def test_pending_change_can_be_refused_and_only_one_at_a_time(session, vault):
    idn = rid()
    reg(session, vault, idn, card())
    new = accounts.change(session, vault, now=NOW, id_number=idn, account=card(), bank_id="icbc-cq",
                          bank_chosen_by_beneficiary=True, recorded_by="c")
    with pytest.raises(AccountError, match="already pending"):
        accounts.change(session, vault, now=NOW, id_number=idn, account=card(), bank_id="icbc-cq",
                        bank_chosen_by_beneficiary=True, recorded_by="c")
    accounts.refuse(session, now=NOW, account_id=new.id, by="永乐镇-王镇长", role="unit", note="本人未到场签字")
    assert accounts.account_state(session, new.id) == "refused"


def test_account_history_cannot_be_updated_or_deleted(engine, vault):
    """Account history is append-only: the database itself refuses UPDATE and DELETE."""
    from sqlalchemy.orm import Session

    with Session(engine) as s, s.begin():
        a = reg(s, vault, rid(), card())
        aid = a.id
    for stmt in (sa.update(Account).where(Account.id == aid).values(bank_id="icbc-cq"),
                 sa.delete(AccountEvent).where(AccountEvent.account_id == aid)):
        with Session(engine) as s:
            with pytest.raises((IntegrityError, DBAPIError)):
                s.execute(stmt)
                s.commit()


def test_proxy_recorded_and_approved(session, vault):
    """Art. 13 代领: the proxy's identity, relation and reason, approved by a second person."""
    idn, proxy = rid("500236", "19360101"), rid("500236", "19650101")
    reg(session, vault, idn, card(), name="李老汉")
    with pytest.raises(AccountError, match="someone other"):
        accounts.record_proxy(session, vault, now=NOW, id_number=idn, proxy_name="李大", proxy_id_number=proxy,
                              relation="子女", reason="行动不便", recorded_by="c1", approved_by="c1")
    with pytest.raises(AccountError, match="own proxy"):
        accounts.record_proxy(session, vault, now=NOW, id_number=idn, proxy_name="李老汉", proxy_id_number=idn,
                              relation="本人", reason="x", recorded_by="c1", approved_by="c2")
    accounts.record_proxy(session, vault, now=NOW, id_number=idn, proxy_name="李大", proxy_id_number=proxy,
                          relation="子女", reason="行动不便", recorded_by="c1", approved_by="c2")
    p = accounts.show(session, vault, idn).proxies[0]
    assert p["proxy_name"] == "李*" and p["proxy_id"].startswith("500236") and "*" in p["proxy_id"]
    assert p["approved_by"] == "c2"


def test_cli_accounts_proxy(db_url, monkeypatch):
    """Art. 13 代领 through `ykt accounts proxy`: recorder and approver must be two people; the proxy
    then shows, masked, in `ykt accounts show`."""
    from click.testing import CliRunner

    from gateway.cli.main import cli
    from gateway.privacy import PiiVault

    monkeypatch.setenv("YKT_PII_KEY", PiiVault.new_key_line("cli"))
    run = CliRunner().invoke
    base = ["--db", db_url]
    idn, proxy = rid("500236", "19360101"), rid("500236", "19650101")
    r = run(cli, base + ["accounts", "register", "--name", "李老汉", "--id", idn, "--unit", "500236101",
                         "--account", card(), "--bank", "cqrcb-fj", "--chosen-by-beneficiary", "--by", "刘会计"])
    assert r.exit_code == 0, r.output
    args = ["accounts", "proxy", "--id", idn, "--proxy-name", "李大明", "--proxy-id", proxy, "--relation", "子女",
            "--reason", "行动不便", "--by", "刘会计"]
    r = run(cli, base + args + ["--approved-by", "刘会计"])
    assert r.exit_code == 1 and "录入人以外" in r.output and "Traceback" not in r.output
    r = run(cli, base + ["--json"] + args + ["--approved-by", "王镇长"])
    assert r.exit_code == 0, r.output
    r = run(cli, base + ["accounts", "show", "--id", idn])
    assert r.exit_code == 0 and "proxy 代领: 李*明" in r.output and "approved by 王镇长" in r.output
    assert proxy not in r.output and "李大明" not in r.output
