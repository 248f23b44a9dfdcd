"""Dispatch: validated items -> files per bank and batch -> durable outbox -> the bank, exactly once.

``plan`` assigns items to files (one transaction); ``render`` writes and signs each planned file
into the outbox (re-rendering a planned file after a crash gives the same content); ``outbox``
claims ready files and records delivery; ``runner`` drives the transports on Twisted.
"""
