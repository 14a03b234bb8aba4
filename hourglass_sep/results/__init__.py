"""The products of a run: length-weighted GNSDR/GSIR/GSAR (``aggregate``), the published
numbers of the course report and of Park's paper (``published``), the speed table, and the
workbook, figures and Markdown report, all reading their inputs through ``run_inputs``.

Owns: summary.tsv, speed.tsv, result.xlsx, figures/, report.md.  May import: ``scoring`` and
every floor below it.
"""
