"""Exceptions shared by all modules."""


class UserError(Exception):
    """An error the user can act on (bad input, missing file, wrong format).

    The CLI prints its message without a traceback and exits with status 2.
    Messages say what was wrong, where, and what to do.
    """
