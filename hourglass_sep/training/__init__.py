"""Training one network: the patch sampler, the loop, checkpoints and resume, snapshots,
precise BatchNorm and weight averaging.

Owns: ``hourglass-sep train``.  May import: ``plan``, ``nets``, ``data``, ``errors``.
"""
