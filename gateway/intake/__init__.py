"""Roster intake: a department's approved roster becomes an immutable batch [Art. 15-16]."""
