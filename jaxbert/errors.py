"""The one error type the CLI turns into a one-line message (bad input, config or checkpoint)."""


class JaxbertError(Exception):
    """A user-facing problem: the message names the thing at fault and the fix."""
