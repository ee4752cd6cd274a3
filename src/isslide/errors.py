"""One error type for every user-facing problem.

Every message is a single line that names the offending file or config field and says how to
fix it. The CLI and the Snakemake scripts print ``isslide: <message>`` and exit non-zero.
"""

from __future__ import annotations


class IsslideError(Exception):
    """A user-facing error: one line naming the file/field and the fix."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
