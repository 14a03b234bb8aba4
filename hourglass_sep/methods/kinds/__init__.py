"""One module per training-free method, each defining ``METHOD`` (a
``methods.record.MethodKind``).

Owns: the methods' records and their masks.  May import: ``methods.record`` at the top (and
``data``); librosa, tensorly and torch only inside the functions that compute masks (the
records are read in torch-free dry runs).  A new method is a new module here plus its test;
``methods.record.method_kinds`` finds it.
"""
