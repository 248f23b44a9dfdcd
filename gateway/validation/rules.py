"""The preset rules of Art. 18 as data: which rules run for which policy, the severity of each
finding code, and the thresholds. Read from ``config/rules.toml`` by :func:`load_rule_sets`.

Layout of ``rules.toml``::

    [defaults]
    rules = ["resident_id", "card_number", ...]   # rules that run when a policy names none
    [defaults.severity]                           # overrides of the default severities below
    SHARED_ACCOUNT = "reject"
    [rule.household]                              # thresholds, for every policy
    max_payees = 5
    [policy.GDDL]                                 # per policy: any of rules / severity / rule.<name>
    rules = [...]
    [policy.GDDL.rule.household]
    max_payees = 8

Severities are ``reject`` or ``review``; nothing can be configured to pass silently. The Luhn
check of a card number (``CARD_LUHN``) can only be a review: real Chinese cards and passbooks fail
it. Every problem is reported with file and key path (:class:`gateway.errors.ConfigError`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from gateway.config.problems import Problem
from gateway.errors import ConfigError
from gateway.validation.model import REJECT, REVIEW

DEFAULT = "*"

#: rule name -> {finding code: (default severity, Chinese message, English message)}
#: Messages are ``str.format`` templates over the finding's evidence.
CATALOGUE: dict[str, dict[str, tuple[str, str, str]]] = {
    "resident_id": {
        "ID_FORMAT": (REJECT, "身份证号码格式错误（应为18位）：{id}", "resident ID is not 18 characters: {id}"),
        "ID_CHECKSUM": (REJECT, "身份证号码校验位错误：{id}（应为 {expected}）",
                        "resident ID check digit is wrong: {id} (expected {expected})"),
        "ID_BIRTH_DATE": (REJECT, "身份证号码中的出生日期不存在：{birth}", "resident ID birth date is not a real date: {birth}"),
        "ID_REGION": (REJECT, "身份证号码的行政区划代码不存在：{region}", "resident ID region code is unknown: {region}"),
    },
    "card_number": {
        "CARD_FORMAT": (REJECT, "账号含非数字字符：{account}", "account number contains non-digits: {account}"),
        "CARD_LENGTH": (REJECT, "账号长度 {length} 位不合理（应为 {min}-{max} 位）：{account}",
                        "account number length {length} is implausible (expected {min}-{max}): {account}"),
        "CARD_LUHN": (REVIEW, "卡号未通过 Luhn 校验，请核实：{account}",
                      "card number fails the Luhn check, please check it: {account}"),
    },
    "amount": {
        "AMOUNT_NOT_POSITIVE": (REJECT, "发放金额必须大于零：{amount} 元", "amount must be more than zero: {amount} yuan"),
        "AMOUNT_OVER_STANDARD": (REJECT, "发放金额 {amount} 元超过政策标准 {standard} 元",
                                 "amount {amount} yuan exceeds the policy standard {standard} yuan"),
    },
    "duplicate": {
        "DUPLICATE_IN_BATCH": (REJECT, "同一人同一政策同一期间在本批次重复（第 {first_seq} 行已有）：{id}",
                               "same person, policy and period twice in this batch (first at row {first_seq}): {id}"),
        "DUPLICATE_PAID": (REJECT, "同一人同一政策同一期间已在批次 {batch} 中发放：{id}",
                           "same person, policy and period already in batch {batch}: {id}"),
    },
    "exclusive_policies": {
        "EXCLUSIVE_POLICY": (REJECT, "{id} 在 {period} 已享受互斥政策 {other}（{where_zh}）",
                             "{id} already receives the mutually exclusive policy {other} for {period} ({where})"),
    },
    "shared_account": {
        "SHARED_ACCOUNT": (REVIEW, "同一账号 {account} 在 {period} 为 {people} 人收款（未登记代领）",
                           "one account {account} receives for {people} people in {period} (no recorded proxy)"),
    },
    "household": {
        "HOUSEHOLD_PAYEES": (REVIEW, "同一户 {period} 享受本政策人数 {payees} 人，超过 {max} 人",
                             "one household has {payees} payees of this policy in {period}, more than {max}"),
    },
    "lists": {
        "ON_DECEASED_LIST": (REJECT, "{id} 已于 {date_of_death} 死亡，不得发放 {period} 的补贴",
                             "{id} died on {date_of_death}; nothing may be paid for {period}"),
        "DEATH_IN_PERIOD": (REVIEW, "{id} 于 {date_of_death} 死亡（发放期间 {period} 内），请核实",
                            "{id} died on {date_of_death}, within the period {period}; please check"),
        "ON_EXCLUDING_LIST": (REJECT, "{id} 在{list_zh}名单中（第 {version} 版），不得享受本政策",
                              "{id} is on the {list} list (version {version}), which excludes this policy"),
        "NOT_ON_REQUIRED_LIST": (REJECT, "{id} 不在{list_zh}名单中（第 {version} 版），不符合本政策条件",
                                 "{id} is not on the {list} list (version {version}) this policy requires"),
        "LIST_UNAVAILABLE": (REVIEW, "{list_zh}名单未导入（{period} 无有效版本），无法比对筛查",
                             "no {list} list in force for {period}: could not screen"),
    },
    "online_verification": {
        "ACCOUNT_NAME_MISMATCH": (REJECT, "银行核验：户名与账号不符 {account}（{reason}）",
                                  "bank verification: name does not match the account {account} ({reason})"),
        "ACCOUNT_ID_MISMATCH": (REJECT, "银行核验：身份证号与账号不符 {account}（{reason}）",
                                "bank verification: ID number does not match the account {account} ({reason})"),
        "ACCOUNT_CLOSED": (REJECT, "银行核验：账户已销户 {account}（{reason}）",
                           "bank verification: account closed {account} ({reason})"),
        "ACCOUNT_FROZEN": (REJECT, "银行核验：账户冻结 {account}（{reason}）",
                           "bank verification: account frozen {account} ({reason})"),
        "ACCOUNT_LOST": (REJECT, "银行核验：卡已挂失 {account}（{reason}）",
                         "bank verification: card reported lost {account} ({reason})"),
        "ACCOUNT_UNKNOWN": (REJECT, "银行核验：账号不存在 {account}（{reason}）",
                            "bank verification: no such account {account} ({reason})"),
        "ACCOUNT_NOT_VERIFIED": (REVIEW, "无法与银行核验账户 {account}：{why_zh}",
                                 "could not verify the account {account} with the bank: {why}"),
    },
    "registered_account": {
        "ACCOUNT_NOT_REGISTERED": (REVIEW, "账号 {account} 不是 {id} 已登记生效的“一卡通”账户（{why_zh}）",
                                   "account {account} is not the registered one-card account of {id} ({why})"),
    },
    "proxy": {
        "PROXY_NOT_APPROVED": (REJECT, "代领人 {proxy_id} 未经审核登记，不得代领 {id} 的补贴",
                               "proxy {proxy_id} is not a recorded, approved proxy of {id}"),
    },
}

#: rule name -> {parameter: default}
PARAMETERS: dict[str, dict[str, Any]] = {
    "card_number": {"min_length": 12, "max_length": 21, "luhn_min_length": 16, "luhn_max_length": 19},
    "shared_account": {"max_people": 1},
    "household": {"max_payees": 5},
}

RULES = tuple(CATALOGUE)
CODES = {code: rule for rule, codes in CATALOGUE.items() for code in codes}
REVIEW_ONLY = frozenset({"CARD_LUHN", "ACCOUNT_NOT_VERIFIED", "LIST_UNAVAILABLE"})


@dataclass(frozen=True)
class RuleSet:
    """The rules that run for one policy, with the severity of each code and the thresholds."""

    policy_code: str
    rules: tuple[str, ...]
    severities: Mapping[str, str]
    params: Mapping[str, Mapping[str, Any]]

    def enabled(self, rule: str) -> bool:
        return rule in self.rules

    def param(self, rule: str, name: str) -> Any:
        return self.params[rule][name]

    def severity(self, code: str) -> str:
        return self.severities[code]

    @classmethod
    def default(cls, policy_code: str = DEFAULT) -> "RuleSet":
        """Every rule with the built-in severities and thresholds."""
        return _build(policy_code, RULES, {}, {})


def _build(policy_code: str, rules, severities: dict, params: dict) -> RuleSet:
    sev = {code: spec[0] for codes in CATALOGUE.values() for code, spec in codes.items()}
    sev.update(severities)
    par = {rule: MappingProxyType({**defaults, **params.get(rule, {})}) for rule, defaults in PARAMETERS.items()}
    return RuleSet(policy_code, tuple(rules), MappingProxyType(sev), MappingProxyType(par))


def _check_table(file: str, path: str, table: Any, problems: list[Problem]) -> tuple[list | None, dict, dict]:
    """Check one ``[defaults]`` or ``[policy.X]`` table; return (rules, severities, params)."""
    if not isinstance(table, dict):
        problems.append(Problem(file, path, "must be a table"))
        return None, {}, {}
    for key in table:
        if key not in ("rules", "severity", "rule"):
            problems.append(Problem(file, f"{path}.{key}", "unknown key (expected rules, severity, rule)"))
    rules = table.get("rules")
    if rules is not None:
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            problems.append(Problem(file, f"{path}.rules", "must be a list of rule names"))
            rules = None
        else:
            for r in rules:
                if r not in CATALOGUE:
                    problems.append(Problem(file, f"{path}.rules", f"unknown rule {r!r} (known: {', '.join(RULES)})"))
            if len(set(rules)) != len(rules):
                problems.append(Problem(file, f"{path}.rules", "a rule is listed twice"))
    severities = {}
    for code, sev in (table.get("severity") or {}).items():
        where = f"{path}.severity.{code}"
        if code not in CODES:
            problems.append(Problem(file, where, f"unknown finding code {code!r}"))
        elif sev not in (REJECT, REVIEW):
            problems.append(Problem(file, where, f"severity must be 'reject' or 'review', got {sev!r}"))
        elif code in REVIEW_ONLY and sev != REVIEW:
            problems.append(Problem(file, where, f"{code} can only be a review (it is not proof of a fault)"))
        else:
            severities[code] = sev
    params: dict[str, dict] = {}
    for rule, values in (table.get("rule") or {}).items():
        where = f"{path}.rule.{rule}"
        if rule not in PARAMETERS:
            problems.append(Problem(file, where, f"rule {rule!r} has no parameters"))
            continue
        if not isinstance(values, dict):
            problems.append(Problem(file, where, "must be a table"))
            continue
        for name, value in values.items():
            if name not in PARAMETERS[rule]:
                problems.append(Problem(file, f"{where}.{name}", f"unknown parameter (known: {', '.join(PARAMETERS[rule])})"))
            elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(Problem(file, f"{where}.{name}", f"must be a positive whole number, got {value!r}"))
            else:
                params.setdefault(rule, {})[name] = value
    return rules, severities, params


def check_rule_sets(config_dir: Path | str) -> tuple[dict[str, RuleSet], list[Problem]]:
    """Read ``rules.toml``; return the rule sets (key ``"*"`` = defaults) and every problem."""
    path = Path(config_dir) / "rules.toml"
    file = str(path)
    problems: list[Problem] = []
    if not path.exists():
        return {DEFAULT: RuleSet.default()}, [Problem(file, "", "file is missing: every rule runs with built-in settings",
                                                     "warning")]
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        return {}, [Problem(file, "", f"not valid TOML: {e}")]
    for key in doc:
        if key not in ("defaults", "rule", "policy"):
            problems.append(Problem(file, key, "unknown table (expected defaults, rule, policy)"))
    d_rules, d_sev, _ = _check_table(file, "defaults", doc.get("defaults", {}), problems)
    _, _, d_par = _check_table(file, "", {"rule": doc.get("rule", {})}, problems)
    d_rules = d_rules if d_rules is not None else list(RULES)
    sets = {DEFAULT: _build(DEFAULT, d_rules, d_sev, d_par)}
    for code, table in (doc.get("policy") or {}).items():
        rules, sev, par = _check_table(file, f"policy.{code}", table, problems)
        merged_par = {r: {**d_par.get(r, {}), **par.get(r, {})} for r in PARAMETERS}
        sets[code] = _build(code, rules if rules is not None else d_rules, {**d_sev, **sev}, merged_par)
    return sets, problems


def load_rule_sets(config_dir: Path | str, policy_codes=None) -> dict[str, RuleSet]:
    """The rule sets per policy code (``"*"`` holds the defaults); raises ``ConfigError`` with
    every problem. ``policy_codes``, when given, must include every policy named in the file."""
    sets, problems = check_rule_sets(config_dir)
    if policy_codes is not None:
        for code in sets:
            if code != DEFAULT and code not in policy_codes:
                problems.append(Problem(str(Path(config_dir) / "rules.toml"), f"policy.{code}",
                                        "no such policy in policies.toml"))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError(errors)
    return sets


def rule_set_for(sets: Mapping[str, RuleSet], policy_code: str) -> RuleSet:
    """The rule set of ``policy_code``, or the defaults when the file names no such policy."""
    if policy_code in sets:
        return sets[policy_code]
    d = sets[DEFAULT]
    return RuleSet(policy_code, d.rules, d.severities, d.params)
