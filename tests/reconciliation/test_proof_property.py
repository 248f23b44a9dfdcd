"""Property: for any sequence of bank reports (any order, repeats, conflicts, wrong amounts, unknown references,
whole-file answers), an independent model of the item lifecycle predicts where every item ends up, and the batch
proof agrees with it bucket by bucket, in count and in fen; every report line is applied, unchanged or an
exception, never lost [Art. 21-22]. Items are matched by EndToEndId and by sequence number in our file. Runs on
SQLite and on PostgreSQL."""

import datetime as dt
import shutil
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy.orm import Session

from gateway.db import make_engine, upgrade
from gateway.db.models import OutboundFile, OutboundFileItem
from reconciliation.apply import latest_states, apply_outcomes
from reconciliation.outcomes import BY_FILE_SEQ, FileOutcome, Outcome
from reconciliation.proof import batch_proof
from tests.conftest import PG_URL
from tests.support.recon import NOW, deliver_batch

N = 4
STATES = ["accepted", "settled", "rejected_by_bank", "returned"]
# the model: what a bank may say next about an item, written out from DESIGN.md's lifecycle (not imported)
MAY_FOLLOW = {"sent": {"accepted", "settled", "rejected_by_bank"}, "accepted": {"settled", "rejected_by_bank"},
              "settled": {"returned"}, "rejected_by_bank": set(), "returned": set()}
BUCKET = {"sent": "outstanding", "accepted": "outstanding", "settled": "settled", "rejected_by_bank": "rejected",
          "returned": "returned"}

line = st.one_of(
    st.tuples(st.just("item"), st.integers(0, N - 1), st.sampled_from(STATES), st.booleans(), st.booleans()),
    st.tuples(st.just("unknown"), st.just(0), st.sampled_from(STATES), st.just(False), st.booleans()),
    st.tuples(st.just("file"), st.just(0), st.sampled_from(["rejected_by_bank", "accepted"]), st.just(False),
              st.booleans()),  # the last flag: a whole-file answer to a file we never sent
)
reports = st.lists(st.lists(line, min_size=1, max_size=6), max_size=4)


class Model:
    """Predicts, line by line, what applying a report does to each item."""

    def __init__(self, n: int) -> None:
        self.state = ["sent"] * n

    def one(self, i: int | None, new: str, wrong_amount: bool) -> str:
        if i is None or wrong_amount:
            return "exceptions"
        cur = self.state[i]
        if new == cur:
            return "unchanged"
        if new in MAY_FOLLOW[cur]:
            self.state[i] = new
            return "applied"
        return "exceptions"

    def report(self, lines) -> dict:
        out = {"applied": 0, "unchanged": 0, "exceptions": 0}
        for kind, i, new, wrong, flag in lines:
            if kind == "item":
                out[self.one(i, new, wrong)] += 1
            elif kind == "unknown":
                out["exceptions"] += 1
            elif flag:
                out["exceptions"] += 1  # one line naming a file we never sent
            else:
                for j in range(len(self.state)):  # the whole file: one answer per item it carried
                    out[self.one(j, new, False)] += 1
        out["lines"] = sum(out.values())
        return out


def outcomes(lines, d, seqs):
    out = []
    for n, (kind, i, new, wrong, flag) in enumerate(lines, 1):
        if kind == "item":
            item_id, e2e, fen, _ = d.items[i]
            amount = Decimal(fen + (1 if wrong else 0)) / 100
            if flag:  # by sequence number in our file, as flat result files answer
                out.append(Outcome(n, str(seqs[item_id]), new, by=BY_FILE_SEQ, original_msg_id=d.msg_id, amount=amount))
            else:
                out.append(Outcome(n, e2e, new, amount=amount))
        elif kind == "unknown":
            out.append(Outcome(n, "99", new, by=BY_FILE_SEQ, original_msg_id=d.msg_id) if flag
                       else Outcome(n, "000000000000000000", new))
        else:
            out.append(FileOutcome("YKT20261102999999999" if flag else d.msg_id, new, "AC04", line=n))
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_db(request, tmp_path_factory):
    """A factory of freshly migrated, empty databases (one per example), copied from one migrated template."""
    made = []
    if request.param == "sqlite":
        tpl = tmp_path_factory.mktemp("tpl") / "t.db"
        upgrade(f"sqlite:///{tpl}")

        def make():
            p = tmp_path_factory.mktemp("ex") / "p.db"
            shutil.copy(tpl, p)
            return f"sqlite:///{p}"
        yield make
        return
    template = request.getfixturevalue("pg_template")
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")

    def make():
        name = f"ykt_p_{uuid.uuid4().hex[:12]}"
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        made.append(name)
        return PG_URL.rsplit("/", 1)[0] + "/" + name
    yield make
    with admin.connect() as c:
        for name in made:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rs=reports)
def test_batch_proof_follows_the_model_for_any_reports(fresh_db, tmp_path_factory, pii_vault, signing_keys, rs):
    tmp = tmp_path_factory.mktemp("prop")
    engine = make_engine(fresh_db())
    try:
        d = deliver_batch(engine, n=N, vault=pii_vault, keys=signing_keys, tmp_path=tmp)
        with Session(engine) as s:
            files = s.scalars(sa.select(OutboundFile.msg_id)).all()
            seqs = dict(s.execute(sa.select(OutboundFileItem.item_id, OutboundFileItem.seq_in_file)).all())
        assert files == [d.msg_id] and len(seqs) == N
        model = Model(N)
        for k, lines in enumerate(rs, 1):
            want = model.report(lines)
            with Session(engine) as s, s.begin():
                got = apply_outcomes(s, outcomes(lines, d, seqs), now=NOW + dt.timedelta(days=k), vault=pii_vault)
            assert {key: getattr(got, key) for key in want} == want, lines
            assert got.lines == got.applied + got.unchanged + got.exceptions
        with Session(engine) as s:
            p = batch_proof(s, d.batch_id)
            states = latest_states(s, [i[0] for i in d.items])
        assert [states[i[0]] for i in d.items] == model.state
        for bucket in ("settled", "rejected", "returned", "outstanding"):
            mine = [fen for (_, _, fen, _), st_ in zip(d.items, model.state) if BUCKET[st_] == bucket]
            assert (getattr(p, bucket).count, getattr(p, bucket).fen) == (len(mine), sum(mine)), (bucket, p.as_dict())
        assert p.balances and not p.anomalies, p.as_dict()
        assert (p.sent.count, p.sent.fen) == (N, sum(i[2] for i in d.items))
    finally:
        engine.dispose()
