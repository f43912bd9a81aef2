"""User-facing errors: one line that names the file, the record and the fix."""


class PlrpError(Exception):
    """An error caused by the user's input or configuration, printed as one line by the CLI."""


def input_error(path, record, problem, fix):
    """Build a PlrpError of the form ``PATH: RECORD: PROBLEM. Fix: FIX``."""
    where = f"{path}" if record is None else f"{path}: {record}"
    return PlrpError(f"{where}: {problem}. Fix: {fix}")
