"""Load ``config/`` (TOML) into :class:`~gateway.config.model.Config`, checking everything.

``check(directory)`` returns every problem found (file, key path, plain message) and never
raises for bad content; ``load(directory)`` returns a ``Config`` or raises ``ConfigError``
carrying all of them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from gateway.calendar import CalendarError, parse_official_year
from gateway.config import model as m
from gateway.config.problems import Problem, Section
from gateway.errors import ConfigError

CODE_COUNTY = r"\d{6}"
CNAPS = r"\d{12}"


def _read_toml(path: Path, problems: list[Problem], *, required: bool = True) -> dict | None:
    if not path.exists():
        if required:
            problems.append(Problem(str(path), "", "file is missing"))
        return None
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        problems.append(Problem(str(path), "", f"not valid TOML: {e}"))
    except UnicodeDecodeError as e:
        problems.append(Problem(str(path), "", f"not UTF-8 text: {e}"))
    except OSError as e:
        problems.append(Problem(str(path), "", f"cannot be read: {e.strerror}"))
    return None


def _entries(doc: dict | None, key: str, file: str, problems: list[Problem]) -> list[Section]:
    if doc is None:
        return []
    raw = doc.get(key, [])
    if not isinstance(raw, list):
        problems.append(Problem(file, key, "must be an array of tables ([[{}]])".format(key)))
        return []
    return [Section(e, file, f"{key}[{i}]", problems) for i, e in enumerate(raw)]


def _unique(entries: list[tuple[Section, str | None]], what: str) -> dict[str, Section]:
    seen: dict[str, Section] = {}
    for sec, code in entries:
        if code is None:
            continue
        if code in seen:
            sec.fail("code" if what != "bank" else "id", f"duplicate {what} {code!r} (also at {seen[code].path})")
        else:
            seen[code] = sec
    return seen


def _load_org(directory: Path, problems: list[Problem]):
    file = directory / "counties.toml"
    doc = _read_toml(file, problems)
    f = str(file)
    counties, departments, units = {}, {}, {}
    secs = _entries(doc, "county", f, problems)
    pairs = [(s, s.str("code", pattern=CODE_COUNTY, hint="a county code has 6 digits (GB/T 2260)")) for s in secs]
    for code, s in _unique(pairs, "county").items():
        name = s.str("name")
        s.unknown_keys({"code", "name"})
        if name:
            counties[code] = m.County(code, name)

    def known_county(c: str) -> str | None:
        return None if c in counties else f"unknown county code {c!r} (not in counties.toml)"

    secs = _entries(doc, "department", f, problems)
    pairs = [(s, s.str("code")) for s in secs]
    for code, s in _unique(pairs, "department").items():
        name, county = s.str("name"), s.str("county")
        s.unknown_keys({"code", "name", "county"})
        if county and known_county(county):
            s.fail("county", known_county(county))
        elif name and county:
            departments[code] = m.Department(code, name, county)
    secs = _entries(doc, "unit", f, problems)
    pairs = [(s, s.str("code")) for s in secs]
    for code, s in _unique(pairs, "unit").items():
        name, county, kind = s.str("name"), s.str("county"), s.str("kind", choices=m.UNIT_KINDS)
        s.unknown_keys({"code", "name", "county", "kind"})
        if county and known_county(county):
            s.fail("county", known_county(county))
        elif name and county and kind:
            units[code] = m.Unit(code, name, kind, county)
    return counties, departments, units, known_county


def _transport(s: Section | None, keys_dir: Path) -> m.Transport | None:
    if s is None:
        return None
    kind = s.str("kind", choices=("sftp", "https", "folder"))
    if kind == "sftp":
        s.unknown_keys({"kind", "host", "port", "username", "inbox", "outbox", "host_key", "client_key"})
        vals = dict(host=s.str("host"), port=s.int("port", minimum=0), username=s.str("username"),
                    inbox=s.str("inbox"), outbox=s.str("outbox"),
                    host_key=s.path_value("host_key", keys_dir), client_key=s.path_value("client_key", keys_dir))
        return None if None in vals.values() else m.SftpTransport(**vals)
    if kind == "https":
        s.unknown_keys({"kind", "url", "server_cert", "client_cert", "client_key"})
        url = s.str("url", pattern=r"https://[^\s/]+(/\S*)?", hint="must start with https://")
        vals = dict(url=url, server_cert=s.path_value("server_cert", keys_dir),
                    client_cert=s.path_value("client_cert", keys_dir), client_key=s.path_value("client_key", keys_dir))
        return None if None in vals.values() else m.HttpsTransport(**vals)
    if kind == "folder":
        s.unknown_keys({"kind", "outgoing", "incoming"})
        out, inc = s.str("outgoing"), s.str("incoming")
        return None if None in (out, inc) else m.FolderTransport(Path(out), Path(inc))
    return None


def _load_banks(directory: Path, problems: list[Problem], known_county, layouts: dict) -> tuple[dict, Path]:
    file = directory / "banks.toml"
    doc = _read_toml(file, problems)
    f = str(file)
    keys_dir = (directory / str((doc or {}).get("keys_dir", "../var/keys"))).resolve()
    banks = {}
    secs = _entries(doc, "bank", f, problems)
    pairs = [(s, s.str("id", pattern=r"[a-z0-9][a-z0-9-]{1,31}", hint="lower-case letters, digits and '-'")) for s in secs]
    allowed = {"id", "name", "bank_code", "counties", "format", "reports", "signature", "cutoff",
               "disbursement_account", "limits", "sla", "transport", "keys"}
    for bank_id, s in _unique(pairs, "bank").items():
        s.unknown_keys(allowed)

        def fmt_check(v: str, *, report: bool) -> str | None:
            if v.startswith("flat:"):
                return None if v[5:] in layouts else f"unknown flat-file layout {v[5:]!r} (not in config/layouts/)"
            ok = m.REPORT_KINDS if report else m.ISO_FORMATS
            return None if v in ok else f"{v!r} is not one of {', '.join(ok)} or flat:<layout>"

        fmt = s.str("format")
        if fmt and fmt_check(fmt, report=False):
            s.fail("format", fmt_check(fmt, report=False))
            fmt = None
        reports = s.list_of_str("reports", check=lambda v: fmt_check(v, report=True))
        acct = s.table("disbursement_account")
        acct_name = acct.str("name") if acct else None
        acct_no = acct.str("number", pattern=r"\d{6,32}", hint="digits only") if acct else None
        lim = s.table("limits")
        limits = None
        if lim:
            lim.unknown_keys({"max_items_per_file", "max_amount_per_file"})
            n, a = lim.int("max_items_per_file", minimum=1), lim.amount("max_amount_per_file")
            limits = m.Limits(n, a) if n and a else None
        sla_s = s.table("sla", required=False)
        sla = m.Sla()
        if sla_s:
            sla_s.unknown_keys({"credit_working_days", "results_working_days", "refund_info_working_days"})
            sla = m.Sla(*(sla_s.int(k, required=False, default=d, minimum=0) or d for k, d in
                          (("credit_working_days", 1), ("results_working_days", 3), ("refund_info_working_days", 3))))
            if sla.credit_working_days > 1:
                sla_s.fail("credit_working_days", "Art. 20 requires crediting within 1 working day", "warning")
            if sla.results_working_days > 3 or sla.refund_info_working_days > 3:
                sla_s.fail("", "Art. 21-22 require results and refund information within 3 working days", "warning")
        transport = _transport(s.table("transport"), keys_dir)
        ks = s.table("keys")
        keys = None
        if ks:
            ks.unknown_keys({"signing_key", "signing_cert", "bank_cert"})
            vals = [ks.path_value(k, keys_dir) for k in ("signing_key", "signing_cert", "bank_cert")]
            keys = None if None in vals else m.BankKeys(*vals)
        vals = dict(
            id=bank_id, name=s.str("name"),
            bank_code=s.str("bank_code", pattern=CNAPS, hint="a CNAPS bank code has 12 digits"),
            counties=s.list_of_str("counties", check=known_county), format=fmt, reports=reports,
            signature=s.str("signature", choices=m.SIGNATURE_SCHEMES), cutoff=s.time("cutoff"),
            disbursement_account_name=acct_name, disbursement_account_number=acct_no,
            limits=limits, sla=sla, transport=transport, keys=keys,
        )
        if None not in vals.values() and vals["counties"] and vals["reports"]:
            banks[bank_id] = m.Bank(**vals)
    return banks, keys_dir


def _load_policies(directory: Path, problems: list[Problem], known_county, departments: dict) -> dict:
    file = directory / "policies.toml"
    doc = _read_toml(file, problems)
    f = str(file)
    secs = _entries(doc, "policy", f, problems)
    pairs = [(s, s.str("code", pattern=r"[A-Z][A-Z0-9-]{0,15}", hint="upper-case letters, digits, '-'")) for s in secs]
    unique = _unique(pairs, "policy")
    policies = {}
    allowed = {"code", "name", "beneficiaries", "standard", "basis", "guide", "frequency", "department",
               "counties", "hotline", "exclusive_with", "must_be_on", "must_not_be_on", "disclosure"}
    list_kind = lambda v: None if v in m.LIST_KINDS else f"unknown list {v!r}; lists are {', '.join(m.LIST_KINDS)}"
    for code, s in unique.items():
        s.unknown_keys(allowed)
        dept = s.str("department")
        if dept and dept not in departments:
            s.fail("department", f"unknown department {dept!r} (not in counties.toml)")
            dept = None
        excl = s.list_of_str("exclusive_with", required=False,
                             check=lambda v: None if v in unique and v != code else f"unknown or self policy {v!r}")
        d = s.table("disclosure", required=False)
        disclosure = m.Disclosure()
        if d:
            d.unknown_keys({"publish_days", "channels"})
            disclosure = m.Disclosure(d.int("publish_days", required=False, default=7, minimum=1) or 7,
                                      d.list_of_str("channels", required=False))
        vals = dict(
            code=code, name=s.str("name"), beneficiaries=s.str("beneficiaries"), standard=s.amount("standard"),
            basis=s.str("basis"), guide=s.str("guide"), frequency=s.str("frequency", choices=m.FREQUENCIES),
            department=dept, counties=s.list_of_str("counties", check=known_county),
            hotline=s.str("hotline", pattern=r"[\d\-+ ()]{5,20}", hint="a telephone number"),
            exclusive_with=excl,
            must_be_on=s.list_of_str("must_be_on", required=False, check=list_kind),
            must_not_be_on=s.list_of_str("must_not_be_on", required=False, check=list_kind),
            disclosure=disclosure,
        )
        if None not in vals.values() and vals["counties"]:
            policies[code] = m.Policy(**vals)
    # exclusivity must be declared both ways, or one side would pay what the other forbids
    for code, p in policies.items():
        for other in p.exclusive_with:
            if other in policies and code not in policies[other].exclusive_with:
                unique[code].fail("exclusive_with", f"{other!r} does not list {code!r} back; exclusivity must be mutual")
    return policies


def _load_calendar(directory: Path, problems: list[Problem]) -> None:
    cal_dir = directory / "calendar"
    if not cal_dir.is_dir():
        problems.append(Problem(str(cal_dir), "", "no official working-day calendar; every deadline would use the fallback", "warning"))
        return
    for path in sorted(cal_dir.glob("*.toml")):
        doc = _read_toml(path, problems)
        if doc is not None:
            try:
                parse_official_year(doc, source=str(path))
            except CalendarError as e:
                problems.append(Problem(str(path), "", str(e)))


def _load_layouts(directory: Path, problems: list[Problem]) -> dict:
    layouts = {}
    for path in sorted((directory / "layouts").glob("*.toml")):
        doc = _read_toml(path, problems)
        if doc is None:
            continue
        try:
            from formats.flatfile.layout import layout_from_mapping
        except ImportError:  # pragma: no cover - the flat-file codec is part of the package
            layouts[path.stem] = doc
            continue
        try:
            layouts[path.stem] = layout_from_mapping(doc, source=str(path))
        except ValueError as e:
            problems.append(Problem(str(path), "", str(e)))
    return layouts


def _load_reasons(directory: Path, problems: list[Problem]):
    path = directory / "reason_codes.toml"
    doc = _read_toml(path, problems)
    if doc is None:
        return None
    try:
        from formats.reasons import ReasonTable
    except ImportError:  # pragma: no cover
        return doc
    try:
        return ReasonTable.from_mapping(doc, source=str(path))
    except ValueError as e:
        problems.append(Problem(str(path), "", str(e)))
        return None


def _check_rules(directory: Path, problems: list[Problem]) -> None:
    """The validation rule sets (``rules.toml``) are configuration too [Art. 18]."""
    from gateway.validation.rules import check_rule_sets

    problems.extend(check_rule_sets(directory)[1])


def _check_key_files(banks: dict, problems: list[Problem], file: str) -> None:
    for b in banks.values():
        paths = [b.keys.signing_key, b.keys.signing_cert, b.keys.bank_cert]
        t = b.transport
        if isinstance(t, m.SftpTransport):
            paths += [t.host_key, t.client_key]
        elif isinstance(t, m.HttpsTransport):
            paths += [t.server_cert, t.client_cert, t.client_key]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            problems.append(Problem(file, f"bank {b.id}", f"key files not found yet (run `ykt keys init`): {', '.join(missing)}", "warning"))


def check(directory: Path | str) -> tuple[m.Config | None, list[Problem]]:
    """Load and check everything; return the config (``None`` if any error) and every problem."""
    directory = Path(directory)
    problems: list[Problem] = []
    if not directory.is_dir():
        return None, [Problem(str(directory), "", "is not a directory")]
    counties, departments, units, known_county = _load_org(directory, problems)
    layouts = _load_layouts(directory, problems)
    reasons = _load_reasons(directory, problems)
    banks, keys_dir = _load_banks(directory, problems, known_county, layouts)
    policies = _load_policies(directory, problems, known_county, departments)
    _load_calendar(directory, problems)
    _check_rules(directory, problems)
    _check_key_files(banks, problems, str(directory / "banks.toml"))
    if any(p.severity == "error" for p in problems):
        return None, problems
    cfg = m.Config(directory.resolve(), keys_dir, counties, departments, units, banks, policies, reasons, layouts)
    return cfg, problems


def load(directory: Path | str) -> m.Config:
    """The checked configuration; raises ``ConfigError`` listing every error."""
    cfg, problems = check(directory)
    if cfg is None:
        raise ConfigError([p for p in problems if p.severity == "error"])
    return cfg
