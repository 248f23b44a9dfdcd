"""The ``ykt`` command line. Every command has ``--help``; failures exit non-zero with a plain
message (Chinese and English where a clerk reads it) and no traceback unless ``--debug``."""

from gateway.cli.main import main

__all__ = ["main"]
