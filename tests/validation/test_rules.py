"""One table per rule of Art. 18, with realistic Chinese cases, on SQLite and PostgreSQL.

Each case runs the engine with only the rule under test, so the expected findings are exact.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from gateway.admin import accounts, lists
from gateway.validation.engine import validate
from gateway.validation.model import REJECT, REVIEW
from gateway.validation.rules import RuleSet
from vhelp import NOW, card, cand, earlier_batch, rid, verified

OUYANG = rid("500236", "19580704", "213")  # 欧阳小明, a valid ID


def run(session, cfg, vault, rule, candidates, policy="DB", batch_id=None, rules=None):
    rs = rules or dataclasses.replace(RuleSet.default(policy), rules=(rule,))
    out = list(validate(candidates, policy=cfg.policies[policy], config=cfg, session=session, vault=vault, now=NOW,
                        rules=rs, batch_id=batch_id, chunk_size=3))  # small chunks: state must carry over
    return {c.seq: [(f.code, f.severity) for f in fs] for c, fs in out}, out


def codes(result):
    return {seq: [c for c, _ in fs] for seq, fs in result.items()}


def wrong_check_digit(n: str) -> str:
    return n[:17] + ("0" if n[17] != "0" else "1")


# --------------------------------------------------------------------------- resident ID


def test_resident_id_table(session, cfg, vault):
    """Art. 18 身份信息是否有效: check digit, real birth date, region code (GB 11643)."""
    feb31 = rid("500236", "19900231", "018")
    cases = [
        (1, OUYANG, []),
        (2, wrong_check_digit(OUYANG), ["ID_CHECKSUM"]),
        (3, feb31, ["ID_BIRTH_DATE"]),  # 1990-02-31 does not exist
        (4, rid("990101", "19700101", "123"), ["ID_REGION"]),  # no such division code
        (5, OUYANG[:17], ["ID_FORMAT"]),
        (6, "11010519491231002X", []),  # check digit X
        (7, "11010519491231002x", []),  # lower-case x is the same number
        (8, rid("500241", "20301001", "011"), ["ID_BIRTH_DATE"]),  # born in the future
    ]
    result, out = run(session, cfg, vault, "resident_id", [cand(s, id_number=n) for s, n, _ in cases])
    assert codes(result) == {s: want for s, _, want in cases}
    assert all(sev == REJECT for fs in result.values() for _, sev in fs)
    f = dict((c.seq, fs) for c, fs in out)[2][0]
    assert "校验位" in f.message_zh and "check digit" in f.message_en
    assert f.evidence["id"] == OUYANG[:6] + "********" + wrong_check_digit(OUYANG)[-4:]  # masked only


# --------------------------------------------------------------------------- card number


def test_card_number_table(session, cfg, vault):
    """Art. 18 开卡信息是否有效: digits, plausible length; Luhn failure only a review."""
    good = card()
    bad_luhn = good[:-1] + str((int(good[-1]) + 1) % 10)
    cases = [
        (1, good, []),
        (2, "6217 0001 2345 6789 019", []),  # spaces as printed on the card
        (3, "62170001234O678901", [("CARD_FORMAT", REJECT)]),  # letter O
        (4, "6217000123", [("CARD_LENGTH", REJECT)]),
        (5, bad_luhn, [("CARD_LUHN", REVIEW)]),
        (6, "500236010012345", []),  # 15-digit rural passbook: no Luhn
    ]
    result, _ = run(session, cfg, vault, "card_number", [cand(s, account=a) for s, a, _ in cases])
    assert result == {s: want for s, _, want in cases}


# --------------------------------------------------------------------------- amount


def test_amount_table(session, cfg, vault):
    """Art. 18: amount over the policy standard (低保 800.00 yuan per month)."""
    cases = [(1, "800.00", []), (2, "800.01", ["AMOUNT_OVER_STANDARD"]), (3, "0.00", ["AMOUNT_NOT_POSITIVE"]),
             (4, "-5.00", ["AMOUNT_NOT_POSITIVE"]), (5, "0.01", [])]
    result, out = run(session, cfg, vault, "amount", [cand(s, amount=a) for s, a, _ in cases])
    assert codes(result) == {s: w for s, _, w in cases}
    assert "800.00" in out[1][1][0].message_zh


# --------------------------------------------------------------------------- duplicates


def test_duplicate_table(session, cfg, vault):
    """Art. 18 是否重复享受补贴: the same person twice in one period, in the batch or earlier."""
    wang, li, zhao, sun = rid(), rid(), rid(), rid()
    earlier_batch(session, vault, "DB", "2026-11", [("李四", li, card())], ref="DB-2026-11-A")
    earlier_batch(session, vault, "DB", "2026-11", [("赵五", zhao, card())], state="rejected_by_bank")
    earlier_batch(session, vault, "DB", "2026-10", [("孙六", sun, card())])
    own = earlier_batch(session, vault, "DB", "2026-11", [("王二", wang, card())])  # the batch itself
    cases = [
        (1, wang, []),
        (2, rid(), []),
        (3, wang, ["DUPLICATE_IN_BATCH"]),  # the same person twice in one period
        (4, li, ["DUPLICATE_PAID"]),  # already paid in batch DB-2026-11-A
        (5, zhao, []),  # the earlier item was rejected by the bank: not paid
        (6, sun, []),  # another period
        (7, wang, ["DUPLICATE_IN_BATCH"]),
    ]
    result, out = run(session, cfg, vault, "duplicate", [cand(s, id_number=n) for s, n, _ in cases], batch_id=own)
    assert codes(result) == {s: w for s, _, w in cases}
    by_seq = {c.seq: fs for c, fs in out}
    assert by_seq[3][0].evidence["first_seq"] == 1 and "DB-2026-11-A" in by_seq[4][0].message_en


# --------------------------------------------------------------------------- exclusive policies


def test_exclusive_policies_table(session, cfg, vault):
    """Art. 18: 低保 (DB) and 特困供养 (TK) are mutually exclusive in the same period."""
    a, b, c_ = rid(), rid(), rid()
    earlier_batch(session, vault, "TK", "2026-11", [("钱七", b, card())], ref="TK-2026-11-X")
    earlier_batch(session, vault, "TK", "2026-10", [("周八", c_, card())])
    cases = [
        (1, a, "TK", []),
        (2, a, "DB", ["EXCLUSIVE_POLICY"]),  # two exclusive policies in this run
        (3, b, "DB", ["EXCLUSIVE_POLICY"]),  # TK already paid this period
        (4, c_, "DB", []),  # TK was paid in another period
        (5, b, "GDDL", []),  # farmland subsidy is not exclusive with TK
    ]
    result, out = run(session, cfg, vault, "exclusive_policies",
                      [cand(s, id_number=n, policy=p) for s, n, p, _ in cases])
    assert codes(result) == {s: w for s, _, _, w in cases}
    assert "TK-2026-11-X" in {c.seq: fs for c, fs in out}[3][0].message_zh


# --------------------------------------------------------------------------- shared account


def test_one_card_for_five_unrelated_people(session, cfg, vault):
    """Art. 10 一人一卡: one card receiving for five unrelated people is found (review)."""
    shared = card()
    names = ["刘一", "陈二", "张三", "李四", "王五"]
    cands = [cand(i, name=n, id_number=rid(), account=shared) for i, n in enumerate(names, 1)]
    cands.append(cand(6, name="赵六", id_number=rid(), account=card()))
    result, out = run(session, cfg, vault, "shared_account", cands)
    assert codes(result) == {1: [], 2: ["SHARED_ACCOUNT"], 3: ["SHARED_ACCOUNT"], 4: ["SHARED_ACCOUNT"],
                             5: ["SHARED_ACCOUNT"], 6: []}
    last = {c.seq: fs for c, fs in out}[5][0]
    assert last.evidence["people"] == 5 and last.severity == REVIEW and shared[-4:] in last.evidence["account"]


def test_shared_account_across_batches_and_with_approved_proxy(session, cfg, vault):
    """Art. 13: payments through a recorded, approved proxy do not count as sharing the card."""
    shared = card()
    earlier_batch(session, vault, "GDDL", "2026-11", [("吴九", rid(), shared)])
    old, son = rid("500236", "19380101"), rid("500236", "19700101")
    accounts.register(session, vault, now=NOW, name="郑老太", id_number=old, unit_code="500236101",
                      account=card(), bank_id="cqrcb-fj", bank_chosen_by_beneficiary=True, recorded_by="clerk1")
    accounts.record_proxy(session, vault, now=NOW, id_number=old, proxy_name="郑大", proxy_id_number=son,
                          relation="子女", reason="行动不便", recorded_by="clerk1", approved_by="head1",
                          proxy_account=shared)
    cands = [cand(1, name="郑老太", id_number=old, account=shared, proxy_name="郑大", proxy_id_number=son),
             cand(2, name="冯十", id_number=rid(), account=shared)]
    result, _ = run(session, cfg, vault, "shared_account", cands)
    assert codes(result) == {1: [], 2: ["SHARED_ACCOUNT"]}  # 吴九 earlier + 冯十 now = 2 people


# --------------------------------------------------------------------------- household


def test_household_with_implausible_number_of_payees(session, cfg, vault):
    """A household (户口簿户号) with more than 5 payees of 低保 in one month is held for review."""
    cands = [cand(i, id_number=rid(), household="500236101-0042") for i in range(1, 7)]
    cands.append(cand(7, id_number=rid(), household="500236101-0043"))
    result, out = run(session, cfg, vault, "household", cands)
    assert codes(result) == {1: [], 2: [], 3: [], 4: [], 5: [], 6: ["HOUSEHOLD_PAYEES"], 7: []}
    assert result[6][0][1] == REVIEW


def test_household_from_registry(session, cfg, vault):
    """Without a household column, the household recorded at registration is used."""
    people = [rid() for _ in range(3)]
    for p in people:
        accounts.register(session, vault, now=NOW, name="何某", id_number=p, unit_code="500236101", account=card(),
                          bank_id="cqrcb-fj", bank_chosen_by_beneficiary=True, recorded_by="c", household="H-7")
    rs = dataclasses.replace(RuleSet.default("DB"), rules=("household",),
                             params={**RuleSet.default().params, "household": {"max_payees": 2}})
    result, _ = run(session, cfg, vault, "household", [cand(i, id_number=p) for i, p in enumerate(people, 1)], rules=rs)
    assert codes(result) == {1: [], 2: [], 3: ["HOUSEHOLD_PAYEES"]}


# --------------------------------------------------------------------------- screening lists


def _csv(tmp_path, name, rows, header=("姓名", "身份证号码", "死亡日期")):
    p = tmp_path / name
    p.write_text("\n".join([",".join(header)] + [",".join(r) for r in rows]) + "\n", encoding="utf-8")
    return p


def _import(session, vault, tmp_path, kind, rows, eff="2026-01-01", header=("姓名", "身份证号码", "死亡日期")):
    return lists.import_list(session, vault, kind=kind, path=_csv(tmp_path, f"{kind}-{eff}.csv", rows, header),
                             effective_from=dt.date.fromisoformat(eff), imported_by="mz-clerk", now=NOW)


def test_lists_table(session, cfg, vault, tmp_path):
    """Art. 18 与其他数据比对筛查: deceased, public employees (财政供养人员), supported persons."""
    dead, employee, alive, supported = rid(), rid(), rid(), rid()
    _import(session, vault, tmp_path, "deceased", [("陈大爷", dead, "2026-08-15")])
    _import(session, vault, tmp_path, "public-employees", [("黄科员", employee)], header=("姓名", "身份证号码"))
    _import(session, vault, tmp_path, "supported", [("林五保", supported)], header=("姓名", "身份证号码"))
    cases = [
        (1, dead, "DB", "2026-11", [("ON_DECEASED_LIST", REJECT)]),  # paid for a period after the death
        (2, dead, "DB", "2026-08", [("DEATH_IN_PERIOD", REVIEW)]),  # died within the month paid
        (3, dead, "DB", "2026-07", []),  # before the death
        (4, employee, "DB", "2026-11", [("ON_EXCLUDING_LIST", REJECT)]),  # a public employee on 低保
        (5, employee, "CJLT", "2026-11", [("LIST_UNAVAILABLE", REVIEW)]),  # no disabled list imported yet
        (6, alive, "DB", "2026-11", []),
        (7, supported, "TK", "2026-11", []),  # TK requires the supported-persons list
        (8, alive, "TK", "2026-11", [("NOT_ON_REQUIRED_LIST", REJECT)]),
    ]
    for seq, idn, policy, period, want in cases:
        result, out = run(session, cfg, vault, "lists", [cand(seq, id_number=idn, policy=policy, period=period)],
                          policy=policy)
        assert result[seq] == want, (seq, result)
    result, out = run(session, cfg, vault, "lists", [cand(1, id_number=dead, period="2026-11")])
    f = out[0][1][0]
    assert "2026-08-15" in f.message_zh and "死亡" in f.message_zh and "died" in f.message_en


def test_list_version_in_force_and_missing_list(session, cfg, vault, tmp_path):
    """Each import is a snapshot; the version in force for a period is the latest effective by
    its last day. No list in force is a review (could not screen), never a silent pass."""
    p = rid()
    result, _ = run(session, cfg, vault, "lists", [cand(1, id_number=p)])
    assert result[1] == [("LIST_UNAVAILABLE", REVIEW), ("LIST_UNAVAILABLE", REVIEW)]  # deceased + public-employees
    _import(session, vault, tmp_path, "public-employees", [("黄科员", p)], eff="2026-01-01", header=("姓名", "身份证号码"))
    _import(session, vault, tmp_path, "public-employees", [("别人", rid())], eff="2026-12-01", header=("姓名", "身份证号码"))
    _import(session, vault, tmp_path, "deceased", [], eff="2026-01-01")
    assert codes(run(session, cfg, vault, "lists", [cand(1, id_number=p, period="2026-11")])[0]) == {1: ["ON_EXCLUDING_LIST"]}
    assert codes(run(session, cfg, vault, "lists", [cand(1, id_number=p, period="2026-12")])[0]) == {1: []}


# --------------------------------------------------------------------------- online verification (cache)


def test_online_verification_table(session, cfg, vault):
    """Art. 12, 18 与金融机构联网验证: answers read from the cache; no answer is a review."""
    rows = [
        (1, "ok", None, None, []),
        (2, "name_mismatch", "BE01", "户名不符", [("ACCOUNT_NAME_MISMATCH", REJECT)]),
        (3, "id_mismatch", "BE01", "证件号码不符", [("ACCOUNT_ID_MISMATCH", REJECT)]),
        (4, "closed", "AC04", "账户已销户", [("ACCOUNT_CLOSED", REJECT)]),
        (5, "frozen", "AC06", "账户冻结", [("ACCOUNT_FROZEN", REJECT)]),
        (6, "lost", "AC06", "挂失", [("ACCOUNT_LOST", REJECT)]),
        (7, "unknown", "AC01", "卡号不存在", [("ACCOUNT_UNKNOWN", REJECT)]),
        (8, "unavailable", None, "HTTP 503", [("ACCOUNT_NOT_VERIFIED", REVIEW)]),  # outage
        (9, "refused", "MD07", "客户已身故", [("ACCOUNT_NOT_VERIFIED", REVIEW)]),
    ]
    cands = []
    for seq, status, code, text, _ in rows:
        c = cand(seq, name="欧阳小明", id_number=rid())
        verified(session, vault, c, status, code=code, text=text)
        cands.append(c)
    expired = cand(10, id_number=rid())
    verified(session, vault, expired, "ok", expires=NOW - dt.timedelta(seconds=1))
    missing = cand(11, id_number=rid())
    other_name = cand(12, name="欧阳小民", id_number=cands[0].id_number, account=cands[0].account)  # not what was asked
    result, out = run(session, cfg, vault, "online_verification", cands + [expired, missing, other_name])
    want = {seq: w for seq, *_, w in rows}
    want.update({10: [("ACCOUNT_NOT_VERIFIED", REVIEW)], 11: [("ACCOUNT_NOT_VERIFIED", REVIEW)],
                 12: [("ACCOUNT_NOT_VERIFIED", REVIEW)]})
    assert result == want
    by = {c.seq: fs for c, fs in out}
    assert "HTTP 503" in by[8][0].message_en and "无法" in by[8][0].message_zh
    assert "户名" in by[2][0].message_zh and "BE01" in by[2][0].message_en


# --------------------------------------------------------------------------- registry and proxy


def test_registered_account_and_proxy_table(session, cfg, vault):
    """Art. 10-14: the roster account must be the active registered one; 代领 only when approved."""
    reg, changed, proxied, stranger = rid(), rid(), rid(), rid()
    acct_reg, acct_old, acct_new, proxy_acct = card(), card(), card(), card()
    kw = dict(now=NOW, unit_code="500236101", bank_id="cqrcb-fj", bank_chosen_by_beneficiary=True, recorded_by="c1")
    accounts.register(session, vault, name="张三", id_number=reg, account=acct_reg, **kw)
    accounts.register(session, vault, name="李四", id_number=changed, account=acct_old, **kw)
    new = accounts.change(session, vault, now=NOW, id_number=changed, account=acct_new, bank_id="icbc-cq",
                          bank_chosen_by_beneficiary=True, recorded_by="c1")
    accounts.approve(session, now=NOW, account_id=new.id, by="unit-head")
    accounts.confirm(session, now=NOW, account_id=new.id, by="county-finance")
    accounts.register(session, vault, name="王奶奶", id_number=proxied, account=card(), **kw)
    son = rid("500236", "19720303")
    accounts.record_proxy(session, vault, now=NOW, id_number=proxied, proxy_name="王大", proxy_id_number=son,
                          relation="子女", reason="卧病在床", recorded_by="c1", approved_by="unit-head",
                          proxy_account=proxy_acct)
    cases = [
        (cand(1, id_number=reg, account=acct_reg), []),
        (cand(2, id_number=changed, account=acct_new), []),
        (cand(3, id_number=changed, account=acct_old), ["ACCOUNT_NOT_REGISTERED"]),  # superseded
        (cand(4, id_number=stranger), ["ACCOUNT_NOT_REGISTERED"]),  # never registered
        (cand(5, id_number=proxied, account=proxy_acct, proxy_name="王大", proxy_id_number=son), []),
        (cand(6, id_number=reg, account=proxy_acct, proxy_name="王大", proxy_id_number=son),
         ["PROXY_NOT_APPROVED", "ACCOUNT_NOT_REGISTERED"]),  # not this person's proxy
    ]
    rs = dataclasses.replace(RuleSet.default("DB"), rules=("registered_account", "proxy"))
    result, out = run(session, cfg, vault, None, [c for c, _ in cases], rules=rs)
    assert codes(result) == {c.seq: w for c, w in cases}
    f = {c.seq: fs for c, fs in out}[3][0]
    assert "superseded" in f.message_en and "替代" in f.message_zh


# --------------------------------------------------------------------------- the whole rule set


def test_clean_item_passes_every_rule_and_streams_in_order(session, cfg, vault, tmp_path):
    """With every rule of config/rules.toml on, a registered, verified, unlisted person has no findings."""
    _import(session, vault, tmp_path, "deceased", [("陈大爷", rid(), "2026-08-15")])
    _import(session, vault, tmp_path, "public-employees", [("黄科员", rid())], header=("姓名", "身份证号码"))
    cands = []
    for i in range(1, 8):
        c = cand(i, name="欧阳小明", id_number=rid(), account=card())
        accounts.register(session, vault, now=NOW, name=c.name, id_number=c.id_number, unit_code=c.unit_code,
                          account=c.account, bank_id="cqrcb-fj", bank_chosen_by_beneficiary=True, recorded_by="c1")
        verified(session, vault, c)
        cands.append(c)
    out = list(validate(iter(cands), policy=cfg.policies["DB"], config=cfg, session=session, vault=vault, now=NOW,
                        chunk_size=3))
    assert [c.seq for c, _ in out] == list(range(1, 8))
    assert all(fs == [] for _, fs in out), out


def test_rules_can_fail():
    """Guard: the table helper really compares (a wrong expectation fails)."""
    with pytest.raises(AssertionError):
        assert codes({1: [("ID_CHECKSUM", REJECT)]}) == {1: []}
