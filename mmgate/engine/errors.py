"""Why an mmgate run stopped: one-line reasons the tools print as they are."""

__all__ = ['RunAborted', 'NonFiniteError', 'CheckpointSaveError']


class RunAborted(RuntimeError):
    """A run that stopped on purpose; the message is one line that says why
    and what to do."""


class NonFiniteError(RunAborted, FloatingPointError):
    """A loss, a parameter or a buffer became NaN or infinite."""


class CheckpointSaveError(RunAborted):
    """A checkpoint could not be written (a full disk, no permission ...);
    the previous checkpoint and ``last_checkpoint`` are kept."""
