"""Partner-bank simulators: SFTP + HTTPS on Twisted, rule-driven (``config/scenarios``), deterministic.

``simulators.testing.start_bank`` starts one for a test; ``ykt simulate-bank`` runs one standalone;
``simulators.keys.ensure_keys`` (``ykt keys init``) makes every key both sides need.
"""
