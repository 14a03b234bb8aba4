"""BSS Eval v3 per clip: the backends (museval, fast_bss_eval, mir_eval, the cached
factorisation), the reference cache, the mixture baseline, and the one rule of which clip
scores are usable (``clip_status``).

Owns: ``hourglass-sep baseline | references | score``.  May import: ``separation``,
``training``, ``plan``, ``nets``, ``data``, ``errors``.
"""
