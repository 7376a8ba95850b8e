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
def root_logging_kept() -> Iterator[None]:
    """Root logging after the block as before it, whatever the block configured: a handler
    `logs.configure` (or `cli.main`) leaves behind writes to a test's closed capture stream, and
    its redacting filter takes `exc_info` off every later test's records."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


@contextmanager
def debug_logs(secrets: list[str], *, json_lines: bool) -> Iterator[tuple[io.StringIO, RawRecords]]:
    """The configured output and the raw records of the block; root logging restored after."""
    stream, raw = io.StringIO(), RawRecords()
    with root_logging_kept():
        logs.configure(level="DEBUG", json_lines=json_lines, secrets=secrets, stream=stream)
        logging.getLogger().handlers.insert(0, raw)
        yield stream, raw
