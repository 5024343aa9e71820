"""Error types shared by every layer; the CLI turns `InputError` into a one-line message and exit code 2."""


class InputError(ValueError):
    """Bad input from the user (file, option, data): the message is one line naming what, where, and
    what was expected. The CLI prints it without a traceback and exits with code 2."""
