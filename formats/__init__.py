"""Pure codecs: bytes <-> model. No sockets, files, database, clock or random IDs in here.

Every public reader takes bytes (or a binary stream) plus a ``source`` name used in error
messages; every writer takes a model and returns bytes (or writes to a binary stream it is
given). The time and message identifiers are arguments.
"""
