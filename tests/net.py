"""Loopback helpers for tests that run real servers: a free port, and what an HTTP call answered."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any


def free_port() -> int:
    """A free TCP port on 127.0.0.1, for servers that bind a configured port themselves."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Answer:
    """What the bot's HTTP server answered."""

    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)
