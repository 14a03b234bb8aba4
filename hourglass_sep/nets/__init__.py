"""The networks: their settings (``ArchConfig``, ``TrainConfig``: every hyper-parameter defined
once, bounds included), the network kinds (one record per family in ``kinds/``, found by
``kind_record``), the models, the hardware choices (device, bf16, threads), inference-time
preparation (BN folding, precision, loading a model file) and the shipped release model.

Owns: what a network is and how a trained one is loaded.  May import: ``data``, ``errors``.
"""
