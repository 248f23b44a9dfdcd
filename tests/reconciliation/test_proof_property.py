"""Property: for any sequence of bank events (any order, repeats, conflicts, unknown references),
the batch proof holds: sent = settled + rejected + returned + outstanding, in count and amount."""

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy.orm import Session

from gateway.db import make_engine, upgrade
from reconciliation.apply import apply_outcomes
from reconciliation.outcomes import FileOutcome, Outcome
from reconciliation.proof import batch_proof
from tests.support.recon import NOW, deliver_batch

N = 5
STATES = ["accepted", "settled", "rejected_by_bank", "returned"]

event = st.one_of(
    st.tuples(st.integers(0, N - 1), st.sampled_from(STATES), st.booleans()),
    st.just(("unknown", "settled", False)),
    st.just(("file", "rejected_by_bank", False)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, max_size=15))
def test_batch_proof_holds_for_any_events(tmp_path_factory, pii_vault, signing_keys, events):
    tmp = tmp_path_factory.mktemp("prop")
    url = f"sqlite:///{tmp / 'p.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        d = deliver_batch(engine, n=N, vault=pii_vault, keys=signing_keys, tmp_path=tmp)
        outcomes = []
        for i, (who, state, wrong_amount) in enumerate(events, 1):
            if who == "unknown":
                outcomes.append(Outcome(i, "000", state))
            elif who == "file":
                outcomes.append(FileOutcome(d.msg_id, state))
            else:
                _, e2e, fen, _ = d.items[who]
                amount = Decimal(fen + (1 if wrong_amount else 0)) / 100
                outcomes.append(Outcome(i, e2e, state, amount=amount))
        with Session(engine) as s, s.begin():
            apply_outcomes(s, outcomes, now=NOW + dt.timedelta(days=1), vault=pii_vault)
        with Session(engine) as s:
            p = batch_proof(s, d.batch_id)
        assert p.balances, p.as_dict()
        assert p.sent.count == N
    finally:
        engine.dispose()
