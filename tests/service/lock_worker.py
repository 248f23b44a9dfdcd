"""One of two processes racing for a singleton job; prints RAN if it ran the job, SKIPPED otherwise."""

import sys
import time
from pathlib import Path

from gateway.db import make_engine
from gateway.service.locks import singleton

url, lock_dir, start_at = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
engine = make_engine(url)
time.sleep(max(0.0, start_at - time.time()))  # both processes try at the same moment
with singleton(engine, "deadline-check", lock_dir=lock_dir) as got:
    if got:
        time.sleep(1.5)  # the job's work, long enough for the other process to try meanwhile
    print("RAN" if got else "SKIPPED", flush=True)
