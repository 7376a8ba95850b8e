"""Logging as `reviewrelay run` sets it up, at DEBUG into a buffer, beside the raw records."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from bot import logs


class RawRecords(logging.Handler):
    """Every record's message as the code logged it (it runs before the filtering handler)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def debug_logs(secrets: list[str], *, json_lines: bool) -> Iterator[tuple[io.StringIO, RawRecords]]:
    """The configured output and the raw records of the block; root logging restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream, raw = io.StringIO(), RawRecords()
    logs.configure(level="DEBUG", json_lines=json_lines, secrets=secrets, stream=stream)
    root.handlers.insert(0, raw)
    try:
        yield stream, raw
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
