"""The rule engine: the preset rules of Art. 18 over a stream of candidates.

``validate`` reads the candidates in chunks; for each chunk it computes the blind indexes, asks
the database once per kind of look-up (earlier payments, registry, proxies, lists, verification
cache) for the whole chunk, then runs the rules of the policy's :class:`RuleSet` and yields each
candidate with its findings, in input order. Memory grows with the number of distinct people in
the run (for the within-batch rules), not with anything else.

What the rules mean here:

* **duplicate**: same person (ID blind index), policy and period twice in this run, or in an
  earlier batch that was not rejected (validation, bank) or returned. The batch under validation
  (``batch_id``) is not "earlier".
* **exclusive_policies**: the person has a policy that either side lists in ``exclusive_with``,
  for the same period, in this run or an earlier batch.
* **shared_account**: more than ``max_people`` distinct people paid into one account in a period
  (this run plus earlier batches), not counting payments through an approved proxy [Art. 13].
  In a stream the finding lands on the payment that crosses the threshold and on later ones.
* **household**: a household is the household register number (户口簿户号): the roster's
  ``household`` field, else the one recorded when the beneficiary was registered. More than
  ``max_payees`` distinct payees of one policy in one household and period is a review.
* **lists**: each import of a list is a full snapshot; the version in force for a period is the
  latest whose ``effective_from`` is on or before the period's last day. Deceased: a period that
  starts after the date of death is a reject, a death within the period a review. No version in
  force: ``LIST_UNAVAILABLE`` (review) — never a silent pass.
* **online_verification**: answered from ``account_verifications`` (filled asynchronously by
  :mod:`gateway.admin.verification`); no answer, an expired one, or "bank unavailable" is
  ``ACCOUNT_NOT_VERIFIED`` (review).
"""

from __future__ import annotations

import calendar as _cal
import datetime as dt
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import islice
from pathlib import Path

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from gateway.admin.models import (ACTIVE, Account, AccountEvent, AccountVerification, Beneficiary, ListEntry,
                                  ListImport, Proxy, SUPERSEDED)
from gateway.config.model import Config, Policy
from gateway.db.engine import in_values
from gateway.db.models import Batch, Item, ItemEvent
from gateway.privacy import PiiVault, mask_account, mask_id, mask_name
from gateway.validation.checks import check_card_number, check_resident_id
from gateway.validation.model import Candidate, Finding
from gateway.packed import PackedMap
from gateway.validation.rules import CATALOGUE, RuleSet, load_rule_sets, rule_set_for

__all__ = ["validate", "load_rule_sets", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 5000
NOT_PAID_STATES = ("rejected_by_validation", "rejected_by_bank", "returned")
LIST_ZH = {"deceased": "死亡人员", "public-employees": "财政供养人员", "disabled": "残疾人员",
           "supported": "供养人员", "registered-poor": "建档立卡人员"}
_VERIFY_CODES = {"name_mismatch": "ACCOUNT_NAME_MISMATCH", "id_mismatch": "ACCOUNT_ID_MISMATCH",
                 "closed": "ACCOUNT_CLOSED", "frozen": "ACCOUNT_FROZEN", "lost": "ACCOUNT_LOST",
                 "unknown": "ACCOUNT_UNKNOWN"}
_MESSAGES = {code: (zh, en) for codes in CATALOGUE.values() for code, (_s, zh, en) in codes.items()}


class _Evidence(dict):
    def __missing__(self, key):  # a template never fails on a missing key
        return "?"


@lru_cache(maxsize=4096)
def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    """First and last day of a ``YYYY-MM`` period."""
    y, m = int(period[:4]), int(period[5:7])
    return dt.date(y, m, 1), dt.date(y, m, _cal.monthrange(y, m)[1])


_RULE_SET_CACHE: dict[tuple[str, float], dict[str, RuleSet]] = {}


def _rule_sets(config: Config) -> dict[str, RuleSet]:
    path = Path(config.directory) / "rules.toml"
    key = (str(path), path.stat().st_mtime if path.exists() else 0.0)
    if key not in _RULE_SET_CACHE:
        _RULE_SET_CACHE[key] = load_rule_sets(config.directory, set(config.policies))
    return _RULE_SET_CACHE[key]


def _naive_utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def validate(candidates: Iterable[Candidate], *, policy: Policy, config: Config, session: Session,
             vault: PiiVault, now: dt.datetime, rules: RuleSet | None = None, batch_id: int | None = None,
             chunk_size: int = DEFAULT_CHUNK) -> Iterator[tuple[Candidate, list[Finding]]]:
    """Run the policy's rules over ``candidates``; yield ``(candidate, findings)`` in input order.

    :param policy: the policy of the batch (a candidate's own ``policy_code`` is used for the
        duplicate and exclusivity keys, so a mixed stream is handled too).
    :param rules: the rule set; default: ``config/rules.toml`` for ``policy.code``.
    :param batch_id: the batch being validated, if its items are already stored: they are not
        "earlier payments".
    :param now: the time of the run (verification-cache expiry, birth dates in the future).
    :raises ConfigError: when ``rules`` is not given and ``rules.toml`` has problems.
    """
    run = _Run(policy=policy, config=config, session=session, vault=vault, now=_naive_utc(now),
               rules=rules or rule_set_for(_rule_sets(config), policy.code), batch_id=batch_id)
    it = iter(candidates)
    while True:
        chunk = list(islice(it, chunk_size))
        if not chunk:
            return
        yield from run.chunk(chunk)


_in = in_values  # one bound parameter for a chunk's values (see gateway.db.engine.in_values)


def _driven(batch_id_col):
    """``items.batch_id`` as the join to ``batches`` takes it: an expression no index serves, so the
    planner finds the chunk's items by their hash index and each one's batch by its key. Joined on
    the bare column, SQLite (without statistics for a batch it is still writing) started from the
    batches of the period and walked ``ix_items_batch_id`` through every item of the batch being
    submitted, once per chunk: quadratic in the roster (a 1M-item intake took 165 s, now 123 s)."""
    return batch_id_col + 0


def _key(blind_index: str) -> bytes:
    """The run-state key of a blind index: its first 128 bits."""
    return bytes.fromhex(blind_index[:32])


def _row_bytes(seq: int) -> bytes:
    return seq.to_bytes(4, "big")


def _row(packed: bytes) -> int:
    return int.from_bytes(packed, "big")


class _Run:
    def __init__(self, *, policy, config, session, vault, now, rules, batch_id):
        self.policy, self.config, self.session, self.vault = policy, config, session, vault
        self.dialect = session.get_bind().dialect.name
        self.now, self.today, self.rules, self.batch_id = now, now.date(), rules, batch_id
        on = rules.enabled
        self.r_id, self.r_card, self.r_amount = on("resident_id"), on("card_number"), on("amount")
        self.r_dup, self.r_excl, self.r_shared = on("duplicate"), on("exclusive_policies"), on("shared_account")
        self.r_house, self.r_lists, self.r_online = on("household"), on("lists"), on("online_verification")
        self.r_reg, self.r_proxy = on("registered_account"), on("proxy")
        self.card_params = tuple(rules.param("card_number", k) for k in
                                 ("min_length", "max_length", "luhn_min_length", "luhn_max_length"))
        self.max_people = rules.param("shared_account", "max_people")
        self.max_payees = rules.param("household", "max_payees")
        # run state (within-batch rules), packed (:class:`PackedMap`): about 60 MB for a million people,
        # where dicts of integers took 200 MB. A person, account or household key is the first 128
        # bits of its blind index as 16 bytes (``_key``); a row number is 4 bytes.
        self.seen: dict[tuple[str, str], PackedMap] = {}  # (policy, period) -> person -> first row
        self.account_first: dict[str, PackedMap] = {}  # period -> account -> the first person paid into it
        self.account_many: dict[str, dict[bytes, set[bytes]]] = {}  # period -> account -> people (2 or more)
        self.household_members: dict[tuple[str, str], PackedMap] = {}  # (policy, period) -> household+person
        self.household_count: dict[tuple[str, str], PackedMap] = {}  # (policy, period) -> household -> payees
        self._exclusive: dict[str, frozenset] = {}
        self._severity = rules.severities
        self.list_kinds = tuple(dict.fromkeys((*policy.must_not_be_on, *policy.must_be_on)))
        self.imports: dict[str, list[tuple[dt.date, int, int]]] = {}
        if self.r_lists and self.list_kinds:
            rows = session.execute(select(ListImport.kind, ListImport.effective_from, ListImport.version,
                                          ListImport.id).where(ListImport.kind.in_(self.list_kinds))).all()
            for kind, eff, ver, iid in rows:
                self.imports.setdefault(kind, []).append((eff, ver, iid))
            for v in self.imports.values():
                v.sort(key=lambda r: r[1], reverse=True)

    # --- helpers -----------------------------------------------------------------------------
    def exclusive(self, code: str) -> frozenset:
        if code not in self._exclusive:
            own = self.config.policies.get(code)
            s = set(own.exclusive_with) if own else set(self.policy.exclusive_with if code == self.policy.code else ())
            s |= {p.code for p in self.config.policies.values() if code in p.exclusive_with}
            self._exclusive[code] = frozenset(s)
        return self._exclusive[code]

    def in_force(self, kind: str, period: str) -> tuple[int, int] | None:
        """(import id, version) of the list version in force for ``period``, or None."""
        end = period_bounds(period)[1]
        for eff, ver, iid in self.imports.get(kind, ()):
            if eff <= end:
                return iid, ver
        return None

    def finding(self, c: Candidate, code: str, ev: dict) -> Finding:
        zh, en = _MESSAGES[code]
        e = _Evidence(ev)
        return Finding(c.seq, code, self._severity[code], zh.format_map(e), en.format_map(e), dict(ev))

    # --- one chunk ---------------------------------------------------------------------------
    def chunk(self, chunk: list[Candidate]) -> Iterator[tuple[Candidate, list[Finding]]]:
        bi = self.vault.blind_index
        # the caller's precomputed blind indexes when the candidate carries them
        ids = [c.id_hash or bi("id", c.id_number) for c in chunk]
        accts = [c.account_hash or bi("account", c.account) for c in chunk]
        names = [c.name_hash or bi("name", c.name) for c in chunk] if self.r_online else None
        uniq_ids = list(set(ids))
        periods = list({c.period for c in chunk})
        d = self.dialect
        if self.session.autoflush:
            self.session.flush()  # what Session.execute would do before reading
        s = self.session.connection()  # Core rows: the look-ups need no ORM bookkeeping

        prior: dict[tuple, str] = {}  # (policy, period, id) -> batch ref
        if self.r_dup or self.r_excl:
            codes = set()
            for code in {c.policy_code for c in chunk}:
                codes.add(code)
                codes |= self.exclusive(code)
            q = (select(Item.id_hash, Batch.policy_code, Batch.period, Batch.ref)
                 .join(Batch, Batch.id == _driven(Item.batch_id))
                 .where(_in(d, Item.id_hash, uniq_ids), Batch.period.in_(periods), Batch.policy_code.in_(codes))
                 .where(~select(ItemEvent.id).where(ItemEvent.item_id == Item.id,
                                                    ItemEvent.state.in_(NOT_PAID_STATES)).exists()))
            if self.batch_id is not None:
                q = q.where(Item.batch_id != self.batch_id)
            for idh, code, period, ref in s.execute(q):
                prior.setdefault((code, period, idh), ref)

        # registry: beneficiaries, their accounts' states, their approved proxies
        registry: dict[str, tuple[int, str | None]] = {}
        acct_state: dict[int, dict[str, str]] = {}
        proxies: dict[int, list[tuple[str, str | None]]] = {}
        if self.r_reg or self.r_proxy or self.r_shared or self.r_house:
            for bid, idh, hh in s.execute(select(Beneficiary.id, Beneficiary.id_hash, Beneficiary.household_hash)
                                          .where(_in(d, Beneficiary.id_hash, uniq_ids))):
                registry[idh] = (bid, hh)
            bids = [v[0] for v in registry.values()]
            if bids and self.r_reg:
                last = (select(func.max(AccountEvent.id)).where(AccountEvent.account_id == Account.id)
                        .correlate(Account).scalar_subquery())
                ev = aliased(AccountEvent)
                for bid, ah, kind in s.execute(select(Account.beneficiary_id, Account.account_hash, ev.kind)
                                               .join(ev, and_(ev.account_id == Account.id, ev.id == last))
                                               .where(_in(d, Account.beneficiary_id, bids))):
                    acct_state.setdefault(bid, {})[ah] = kind
            if bids and (self.r_proxy or self.r_shared or self.r_reg):
                for bid, ph, ah in s.execute(select(Proxy.beneficiary_id, Proxy.proxy_id_hash, Proxy.account_hash)
                                             .where(_in(d, Proxy.beneficiary_id, bids))):
                    proxies.setdefault(bid, []).append((ph, ah))

        prior_acct_people: dict[tuple, set] = {}
        if self.r_shared:
            q = (select(Batch.period, Item.account_hash, Item.id_hash).join(Batch, Batch.id == _driven(Item.batch_id))
                 .where(_in(d, Item.account_hash, set(accts)), Batch.period.in_(periods),
                        Item.proxy_id_hash.is_(None))
                 .where(~select(ItemEvent.id).where(ItemEvent.item_id == Item.id,
                                                    ItemEvent.state.in_(NOT_PAID_STATES)).exists()))
            if self.batch_id is not None:
                q = q.where(Item.batch_id != self.batch_id)
            for period, ah, idh in s.execute(q):
                prior_acct_people.setdefault((period, ah), set()).add(idh)

        on_list: dict[tuple[int, str], dt.date | None] = {}
        if self.r_lists and self.list_kinds:
            iids = {f[0] for k in self.list_kinds for p in periods if (f := self.in_force(k, p))}
            if iids:
                for iid, idh, dod in s.execute(select(ListEntry.import_id, ListEntry.id_hash, ListEntry.date_of_death)
                                               .where(_in(d, ListEntry.id_hash, uniq_ids), ListEntry.import_id.in_(iids))):
                    on_list[(iid, idh)] = dod

        cache: dict[tuple, tuple] = {}
        if self.r_online:
            for ah, idh, nh, st, rc, rt, exp in s.execute(
                    select(AccountVerification.account_hash, AccountVerification.id_hash,
                           AccountVerification.name_hash, AccountVerification.status, AccountVerification.reason_code,
                           AccountVerification.reason_text, AccountVerification.expires_at)
                    .where(_in(d, AccountVerification.account_hash, set(accts)))):
                cache[(ah, idh, nh)] = (st, rc, rt, exp)

        for i, c in enumerate(chunk):
            yield c, self.one(c, ids[i], accts[i], names[i] if names else None, prior, registry, acct_state,
                              proxies, prior_acct_people, on_list, cache)

    # --- one candidate -----------------------------------------------------------------------
    def one(self, c: Candidate, idh: str, ah: str, nh: str | None, prior, registry, acct_state, proxies,
            prior_acct_people, on_list, cache) -> list[Finding]:
        out: list[Finding] = []
        F = self.finding
        if self.r_id:
            for code, ev in check_resident_id(c.id_number, self.today):
                out.append(F(c, code, ev))
        if self.r_card:
            for code, ev in check_card_number(c.account, *self.card_params):
                out.append(F(c, code, ev))
        if self.r_amount:
            if c.amount <= 0:
                out.append(F(c, "AMOUNT_NOT_POSITIVE", {"amount": str(c.amount)}))
            elif c.amount > self.policy.standard:
                out.append(F(c, "AMOUNT_OVER_STANDARD", {"amount": str(c.amount), "standard": str(self.policy.standard)}))
        period, code = c.period, c.policy_code
        pk = _key(idh)
        seen = self.seen.get((code, period))
        if seen is None:
            seen = self.seen[(code, period)] = PackedMap(16, 4)
        if self.r_dup:
            key = (code, period, idh)
            first = seen.setdefault(pk, _row_bytes(c.seq))
            if first is not None:
                out.append(F(c, "DUPLICATE_IN_BATCH", {"id": mask_id(c.id_number), "first_seq": _row(first),
                                                       "policy": code, "period": period}))
            else:
                ref = prior.get(key)
                if ref is not None:
                    out.append(F(c, "DUPLICATE_PAID", {"id": mask_id(c.id_number), "batch": ref, "policy": code,
                                                       "period": period}))
        if self.r_excl:
            excl = self.exclusive(code)
            if excl:
                for other in sorted(excl):
                    other_seen = self.seen.get((other, period))
                    found = other_seen.get(pk) if other_seen is not None else None
                    if found is not None:
                        row = _row(found)
                        out.append(F(c, "EXCLUSIVE_POLICY", {"id": mask_id(c.id_number), "other": other, "period": period,
                                                             "where": f"row {row} of this batch",
                                                             "where_zh": f"本批次第 {row} 行"}))
                    elif (ref := prior.get((other, period, idh))) is not None:
                        out.append(F(c, "EXCLUSIVE_POLICY", {"id": mask_id(c.id_number), "other": other, "period": period,
                                                             "where": f"batch {ref}", "where_zh": f"批次 {ref}"}))
            if not self.r_dup:
                seen.setdefault(pk, _row_bytes(c.seq))
        reg = registry.get(idh)
        # proxy collection [Art. 13]
        via_proxy = False
        if c.proxy_id_number:
            ph = c.proxy_id_hash or self.vault.blind_index("id", c.proxy_id_number)
            approved = reg is not None and any(p == ph and (pa is None or pa == ah) for p, pa in proxies.get(reg[0], ()))
            via_proxy = approved
            if self.r_proxy and not approved:
                out.append(F(c, "PROXY_NOT_APPROVED", {"id": mask_id(c.id_number), "proxy_id": mask_id(c.proxy_id_number),
                                                       "proxy_name": mask_name(c.proxy_name or "")}))
        if self.r_shared and not via_proxy:
            n = self.account_payees(period, _key(ah), pk, prior_acct_people.get((period, ah)))
            if n > self.max_people:
                out.append(F(c, "SHARED_ACCOUNT", {"account": mask_account(c.account), "people": n, "period": period,
                                                   "id": mask_id(c.id_number)}))
        if self.r_house:
            hh = self.vault.blind_index("household", c.household) if c.household else (reg[1] if reg else None)
            if hh:
                n = self.household_payees((code, period), _key(hh), pk)
                if n > self.max_payees:
                    out.append(F(c, "HOUSEHOLD_PAYEES", {"payees": n, "max": self.max_payees, "period": period,
                                                         "id": mask_id(c.id_number)}))
        if self.r_lists:
            self.screen(c, idh, on_list, out)
        if self.r_online:
            self.online(c, ah, idh, nh, cache, out)
        if self.r_reg and not via_proxy:
            why = None
            if reg is None:
                why = ("该人未登记“一卡通”账户", "the person has no registered one-card account")
            else:
                state = acct_state.get(reg[0], {}).get(ah)
                if state == SUPERSEDED:
                    why = ("该账号已被变更替代", "the account was superseded by a change of account")
                elif state != ACTIVE:
                    why = ("与登记账号不一致或尚未确认", "it differs from the registered account or is not yet confirmed")
            if why:
                out.append(F(c, "ACCOUNT_NOT_REGISTERED", {"account": mask_account(c.account), "id": mask_id(c.id_number),
                                                           "why_zh": why[0], "why": why[1]}))
        return out

    def account_payees(self, period: str, account: bytes, person: bytes, earlier: set[str] | None) -> int:
        """How many distinct people are paid into ``account`` in ``period``, counting ``person`` and
        ``earlier`` (the id hashes of people paid into it by other batches of the period)."""
        many = self.account_many.setdefault(period, {})
        people = many.get(account)
        if people is not None:
            people.add(person)
        else:
            first_of = self.account_first.get(period)
            if first_of is None:
                first_of = self.account_first[period] = PackedMap(16, 16)
            first = first_of.setdefault(account, person)
            if first is not None and first != person:
                people = many[account] = {first, person}
        if earlier:
            if people is None:
                people = many[account] = {person}
            people |= {_key(x) for x in earlier}
        return 1 if people is None else len(people)

    def household_payees(self, scope: tuple[str, str], household: bytes, person: bytes) -> int:
        """How many distinct people of ``household`` this run has paid under ``scope`` (policy, period),
        counting ``person``."""
        members = self.household_members.get(scope)
        if members is None:
            members = self.household_members[scope] = PackedMap(32, 0)
            self.household_count[scope] = PackedMap(16, 4)
        counts = self.household_count[scope]
        n = _row(counts.get(household) or bytes(4))
        if members.add(household + person):
            n += 1
            counts.put(household, _row_bytes(n))
        return n

    def screen(self, c: Candidate, idh: str, on_list, out: list[Finding]) -> None:
        p = self.policy
        for kind in self.list_kinds:
            f = self.in_force(kind, c.period)
            if f is None:
                out.append(self.finding(c, "LIST_UNAVAILABLE", {"id": mask_id(c.id_number), "list": kind,
                                                                "list_zh": LIST_ZH.get(kind, kind), "period": c.period}))
                continue
            iid, version = f
            hit = (iid, idh) in on_list
            if hit == (kind in p.must_be_on):
                continue  # on a required list, or not on an excluding one
            base = {"id": mask_id(c.id_number), "list": kind, "list_zh": LIST_ZH.get(kind, kind), "period": c.period,
                    "version": version}
            if kind in p.must_not_be_on and hit:
                if kind == "deceased":
                    dod = on_list[(iid, idh)]
                    start, end = period_bounds(c.period)
                    if dod is None or dod < start:
                        out.append(self.finding(c, "ON_DECEASED_LIST", {**base, "date_of_death": str(dod)}))
                    elif dod <= end:
                        out.append(self.finding(c, "DEATH_IN_PERIOD", {**base, "date_of_death": str(dod)}))
                else:
                    out.append(self.finding(c, "ON_EXCLUDING_LIST", base))
            if kind in p.must_be_on and not hit:
                out.append(self.finding(c, "NOT_ON_REQUIRED_LIST", base))

    def online(self, c: Candidate, ah: str, idh: str, nh: str, cache, out: list[Finding]) -> None:
        hit = cache.get((ah, idh, nh))
        acct = mask_account(c.account)
        if hit is None:
            why = ("尚无银行核验结果", "no answer from the bank yet")
        else:
            status, rc, rt, exp = hit
            if exp <= self.now:
                why = ("核验结果已过期", "the bank's answer has expired")
            elif status == "ok":
                return
            elif status in _VERIFY_CODES:
                reason = rc or status
                out.append(self.finding(c, _VERIFY_CODES[status], {"account": acct, "reason": reason,
                                                                   "reason_text": rt or "", "bank_id": c.bank_id}))
                return
            elif status == "unavailable":
                why = (f"银行暂时无法核验（{rt or status}）", f"the bank was unavailable ({rt or status})")
            else:
                why = (f"银行答复 {rc or status}（{rt or ''}）", f"the bank answered {rc or status} ({rt or ''})")
        out.append(self.finding(c, "ACCOUNT_NOT_VERIFIED", {"account": acct, "why_zh": why[0], "why": why[1],
                                                            "bank_id": c.bank_id}))
