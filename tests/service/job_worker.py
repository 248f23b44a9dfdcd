"""One of two gateway processes whose schedulers both fire the daily deadline check.

``job_worker.py DB_URL VAR_DIR START_AT DAY...``: for each China date DAY (at START_AT + 2 s per day
before it), fires ``gateway.service.jobs.deadline_check_job`` twice, 0.6 s apart (a late second fire,
as a second scheduler or a misfire would), with the service's clock at 18:00 that day. The job's
structured log lines go to stdout, one JSON object a line."""

import datetime as dt
import sys
import time
from pathlib import Path

from gateway import logs
from gateway.config import load
from gateway.privacy import PiiVault
from gateway.service import jobs
from gateway.service.serve import GatewayService
from gateway.timeutil import utc_from_local

url, var_dir, start_at, days = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
logs.configure(stream=sys.stdout)
svc = GatewayService(reactor=None, cfg=load("config"), db_url=url, vault=PiiVault.from_text(PiiVault.new_key_line("w")),
                     var_dir=var_dir, transports={"none": None})
jobs.RUNNING["service"] = svc
for k, day in enumerate(days):
    instant = utc_from_local(dt.date.fromisoformat(day), dt.time(18, 0))
    svc.now = lambda instant=instant: instant
    for fire in (0.0, 0.6):
        time.sleep(max(0.0, start_at + 2.0 * k + fire - time.time()))
        jobs.deadline_check_job()
svc.engine.dispose()
