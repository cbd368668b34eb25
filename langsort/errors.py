"""The one base class for failures a user can fix: the CLI reports these in one line and
exits 2; anything else is a bug and keeps its traceback."""


class LangsortError(Exception):
    """An expected failure (bad input, a missing folder, an unusable model); the message
    says what is wrong and how to fix it."""


class ParameterError(LangsortError, ValueError):
    """Spectrogram, segment or training parameters that cannot work together."""
