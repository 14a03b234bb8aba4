"""The experiment plan: config variants resolved into runs at a scale (``experiments``), and
the sizing of a variant's network (``model_info``).  Torch-free where the Snakefile imports it.

Owns: variants -> runs.  May import: ``nets``, ``data``, ``errors``.
"""
