"""Configuration as data: ``config/*.toml`` loaded into frozen dataclasses with strict checking."""

from gateway.config.load import check, load
from gateway.config.model import Bank, Config, Policy

__all__ = ["Bank", "Config", "Policy", "check", "load"]
