"""Shared by the web tests: the users of the permission matrix, and beneficiaries with accounts."""

import datetime as dt

from gateway.admin import auth

PASSWORD = "correct horse battery"

# username -> (role, scope)
USERS = {
    "fin_fj": (auth.FINANCE, "500236"), "fin_xs": (auth.FINANCE, "500241"),
    "dept_fj": (auth.DEPARTMENT, "FJ-NYNC"), "dept_mz": (auth.DEPARTMENT, "FJ-MZ"),
    "unit_101": (auth.UNIT, "500236101"), "unit_102": (auth.UNIT, "500236102"),
    "bank_icbc": (auth.BANK, "icbc-cq"), "bank_rcb": (auth.BANK, "cqrcb-fj"),
    "aud_fj": (auth.AUDITOR, "500236"), "aud_all": (auth.AUDITOR, "*"),
}



# --- beneficiaries and one-card accounts for the account endpoints [Art. 10-14] ---------------------

NOW = dt.datetime(2026, 11, 2, 2, 0)


def person(n: int, birth: str = "19700101") -> tuple[str, str]:
    """A resident ID (correct check digit) and a 19-digit card number, both unique by ``n``."""
    from gateway.identity import with_check_digit

    return with_check_digit(f"500236{birth}{200 + n:03d}"), f"62170005{n:011d}"


def register_people(engine, vault) -> dict:
    """Three beneficiaries of unit 500236101, written as ``ykt accounts …`` would:

    ``b1`` active, with a declared change ``declared`` (to approve); ``b2`` active, with an approved
    change ``approved`` (to confirm); ``b3`` active and nothing pending (to change). Returns their
    ids and ``ids``: beneficiary id -> resident ID.
    """
    from sqlalchemy.orm import Session

    from gateway.admin import accounts

    out, ids = {}, {}
    with Session(engine) as s, s.begin():
        for i, (key, name) in enumerate((("b1", "李老汉"), ("b2", "欧阳小明"), ("b3", "王芳")), 1):
            idn, acct = person(i)
            a = accounts.register(s, vault, now=NOW, name=name, id_number=idn, unit_code="500236101", account=acct,
                                  bank_id="icbc-cq", bank_chosen_by_beneficiary=True, recorded_by="永乐镇-刘会计")
            out[key], ids[a.beneficiary_id] = a.beneficiary_id, idn
        for key, n, steps in (("declared", 11, 0), ("approved", 12, 1)):
            idn = ids[out["b1" if key == "declared" else "b2"]]
            a = accounts.change(s, vault, now=NOW, id_number=idn, account=person(n)[1], bank_id="icbc-cq",
                                bank_chosen_by_beneficiary=True, recorded_by="永乐镇-刘会计")
            if steps:
                accounts.approve(s, now=NOW, account_id=a.id, by="永乐镇-王镇长")
            out[key] = a.id
    out["ids"] = ids
    return out
