"""Reconciliation: the item lifecycle, matching bank returns to items, resubmission, deadlines."""
