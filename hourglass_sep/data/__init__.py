"""The clips and what is computed from them once: audio I/O, MIR-1K (download, local copy,
validation), the built-in synthetic corpus, the clip catalogue with its train/test split, the
STFT features and the spectrogram cache.

Owns: reading/writing audio, clip tables, features, caches.  May import: ``hourglass_sep.errors``
only (it is the bottom floor).
"""
