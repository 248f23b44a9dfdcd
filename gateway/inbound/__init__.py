"""Inbound: every file a bank sends is stored raw first (never lost), then verified, parsed and applied."""
