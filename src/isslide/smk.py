"""Runtime glue for ``workflow/scripts``: logging into the rule's log, one-line errors.

Every script is::

    from isslide.smk import run
    run(snakemake, function)

``function(snakemake)`` does the work through the library. Messages go to the rule's ``log:``
file; an :class:`~isslide.errors.IsslideError` (or any exception) ends the job with a one-line
``isslide: ...`` message on stderr (full traceback in the log) and a non-zero exit, after which
Snakemake deletes the job's incomplete outputs.
"""

from __future__ import annotations

import logging
import sys
import traceback

from .errors import IsslideError

log = logging.getLogger("isslide")


def setup_logging(logfile: str | None = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)


def run(snakemake, function) -> None:
    logfile = snakemake.log[0] if len(snakemake.log) else None
    setup_logging(logfile)
    try:
        function(snakemake)
    except IsslideError as exc:
        log.debug("traceback:\n%s", traceback.format_exc())
        if logfile:
            with open(logfile, "a") as fh:
                fh.write(f"isslide: {exc}\n")
        print(f"isslide: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        if logfile:
            with open(logfile, "a") as fh:
                fh.write(traceback.format_exc())
        raise
