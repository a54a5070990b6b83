"""TIME arguments of the audit commands: ISO 8601 with an offset, never a guess at one.

A time without an offset is refused rather than read as UTC (or as the machine's zone): an
audit asked about 09:00 where the reader is and answered about 09:00 UTC would be wrong with
nothing to show it.
"""

import argparse
from datetime import datetime

__all__ = ["parse_time"]


def parse_time(text: str) -> datetime:
    """`text` as an aware datetime (`2026-11-23T09:00:00Z`, `2026-11-23T10:00+01:00`); an
    `argparse.ArgumentTypeError` saying what is wrong otherwise, so argparse prints it."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-23T09:00:00Z)"
        ) from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no offset: say which zone, e.g. {text}Z or {text}+01:00"
        )
    return at
