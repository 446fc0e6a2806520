"""Errors meant for people: the CLI prints them on one line and exits non-zero."""


class SvpnError(Exception):
    """A problem with the operator's input or environment (not a bug).

    The message names the field, the value and what would be valid.
    """

    exit_code = 2
