"""Kept for older imports: the roster builders live in ``tests.support.rosters``."""

from tests.support.rosters import *  # noqa: F401,F403
from tests.support.rosters import HEADER, NAMES, csv_bytes, resident_id, rows  # noqa: F401
