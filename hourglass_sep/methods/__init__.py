"""Training-free separation methods: one record per method (``kinds/``: the oracle masks
``oracle-irm`` / ``oracle-ibm``, ``repet-sim``, ``rpca``), each turning a magnitude spectrogram
into voice and accompaniment masks, found by ``record.method_kinds``.  The separation floor
applies the masks (workflow shards, song files); the plan reads the records to check a config's
``method:`` settings.

Owns: what a training-free method is, its settings and its masks.  May import: ``data``,
``registry``, ``errors`` (torch, librosa and tensorly only inside the functions that compute
masks: the Snakefile reads the records in torch-free dry runs).
"""
