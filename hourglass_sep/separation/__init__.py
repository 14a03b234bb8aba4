"""Mixture -> voice + accompaniment: whole-clip and windowed schedules, full-band songs of
any rate and length, song files in and stems out, the workflow's separation shards.

Owns: ``hourglass-sep separate`` (networks; training-free methods with ``--method``).
May import: ``training`` (nothing today), ``plan``, ``nets``, ``methods``, ``data``, ``errors``.
"""
