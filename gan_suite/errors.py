"""Exceptions with one-line messages, printed by the CLI without a traceback."""


class GanSuiteError(Exception):
    """Base class: a problem the user can fix, stated in one line."""


class ConfigError(GanSuiteError):
    """A configuration value is invalid or inconsistent with another one."""


class DataUnavailableError(GanSuiteError):
    """A dataset is not on disk and cannot be downloaded."""


class WeightsUnavailableError(GanSuiteError):
    """Pretrained weights (e.g. Inception) are not on disk and cannot be downloaded."""


class NonFiniteLossError(GanSuiteError):
    """A loss became NaN or inf during training."""


class NonFiniteSamplesError(GanSuiteError):
    """Generated samples contain NaN or inf values."""


class UnsafeFileError(GanSuiteError):
    """A file could only be read by running code named inside it (a pickle of functions or classes); refused."""


class UsageError(GanSuiteError):
    """A command-line option is missing, unknown or out of range."""


def one_line(err: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception that ends a command.

    GanSuiteError, Lightning's MisconfigurationException and argument errors are the user's to fix
    (exit 2, their own first line); anything else is unexpected (exit 1, type and first line).
    """
    text = str(err).strip()
    first = text.splitlines()[0].strip() if text else ""
    if type(err).__name__ == "ArgumentError":
        return 2, compact_report(text) or type(err).__name__
    if isinstance(err, GanSuiteError) and "Original Traceback" in text:  # re-raised from a DataLoader worker
        last = text.splitlines()[-1].strip()
        return 2, last.split(": ", 1)[1] if last.startswith(("gan_suite.", type(err).__name__)) and ": " in last else last
    if isinstance(err, GanSuiteError) or type(err).__name__ == "MisconfigurationException":
        return 2, first or type(err).__name__
    return 1, f"unexpected {type(err).__name__}: {first} (rerun with --debug or GAN_SUITE_DEBUG=1 for the traceback)"


def compact_report(text: str) -> str:
    """One line from jsonargparse's multi-line report of a value that fits none of a union's types.

    The report names the key, then lists per candidate type why the value did not fit; the
    candidates ``None`` and the trailing "Given value" lines are dropped, the rest joined.
    """
    import re

    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    head, reasons, in_errors = [], [], False
    for line in lines:
        if line.startswith(("Given value", "Subtypes:")):
            if in_errors:
                break
            continue
        if line == "Errors:":
            in_errors = True
        elif in_errors:
            if "Expected a <class 'NoneType'>" not in line:
                reasons.append(line.lstrip("- ").strip())
        elif line != "Does not validate against any of the Union subtypes":
            head.append(line)
    if not in_errors:
        return " ".join(head).replace(" Does not validate against any of the Union subtypes", "")
    found = re.search(r"class_path='([^']+)'", text)
    if found and not any(found.group(1) in r for r in reasons):
        head.append(f"{found.group(1)}:")
    return " ".join(head + reasons).replace(" Does not validate against any of the Union subtypes", "")
