"""What the Snakemake workflow needs besides the CLI: config validation and defaults (the JSON
schema, old key names), and the removal of a killed run's stale locks.

Owns: the bridge from config.yaml to the rules.  May import: every floor below it.
"""
