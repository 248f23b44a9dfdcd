"""Database triggers that refuse UPDATE and DELETE on submitted data (Art. 15: "任何单位和个人不得在
'一卡通'系统修改补贴资金发放数据"). Enforced by the database itself, so raw SQL is refused too."""

from __future__ import annotations

MESSAGE = "submitted subsidy data is immutable (Art. 15); corrections are new batches"


def create_statements(dialect: str, tables: tuple[str, ...]) -> list[str]:
    if dialect == "sqlite":
        out = []
        for t in tables:
            for op in ("UPDATE", "DELETE"):
                out.append(
                    f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} "
                    f"BEGIN SELECT RAISE(ABORT, '{t}: {MESSAGE}'); END"
                )
        return out
    if dialect == "postgresql":
        out = [
            "CREATE OR REPLACE FUNCTION ykt_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '%: {MESSAGE}', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation'; END $$"
        ]
        for t in tables:
            out.append(f"CREATE TRIGGER {t}_immutable BEFORE UPDATE OR DELETE ON {t} "
                       "FOR EACH ROW EXECUTE FUNCTION ykt_refuse_change()")
            out.append(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION ykt_refuse_change()")
        return out
    raise NotImplementedError(f"no immutability triggers for database {dialect!r}; use SQLite or PostgreSQL")


def drop_statements(dialect: str, tables: tuple[str, ...]) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {t}_no_{op}" for t in tables for op in ("update", "delete")]
    out = []
    for t in tables:
        out += [f"DROP TRIGGER IF EXISTS {t}_immutable ON {t}", f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}"]
    return out
