"""One module per network kind, each defining ``KIND`` (a ``nets.kind_record.NetworkKind``).

Owns: the kinds' records.  May import: ``nets.kind_record`` at the top, and the torch module of
its network inside its ``build`` only (the records are read in torch-free dry runs).  A new kind
is a new module here plus its test; ``nets.kind_record.network_kinds`` finds it.
"""
