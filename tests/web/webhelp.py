"""Shared by the web tests: the users of the permission matrix."""

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


