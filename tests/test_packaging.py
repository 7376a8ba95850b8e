"""The Docker image as written (no engine here) and the wheel it installs."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (m.group(1).upper(), m.group(2).strip())
        for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, re.MULTILINE)
        if not m.group(0).lstrip().startswith("#")
    ]


def test_dockerfile_runs_as_non_root_with_data_volume_and_healthcheck():
    """Multi-stage slim build, non-root user, /data volume, /healthz check, `reviewrelay run`."""
    found = _instructions()
    froms = [arg for op, arg in found if op == "FROM"]
    assert len(froms) == 2
    assert all("slim" in f for f in froms)
    users = [arg for op, arg in found if op == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert any(op == "VOLUME" and "/data" in arg for op, arg in found)
    assert any(op == "HEALTHCHECK" and "/healthz" in arg for op, arg in found)
    assert ("ENTRYPOINT", '["reviewrelay"]') in found
    assert ("CMD", '["run"]') in found
    assert any(op == "ENV" and "sqlite:////data/" in arg for op, arg in found)


@pytest.mark.slow
def test_the_wheel_the_image_installs_builds_and_carries_the_migrations(tmp_path):
    """`pip wheel .` (what the image's build stage runs) produces a wheel with every package
    and the SQL migrations."""
    subprocess.run(  # noqa: S603 - our own interpreter and project
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("reviewrelay-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for required in (
        "bot/cli.py",
        "adapters/slack/app.py",
        "storage/sqlite.py",
        "storage/migrations/0001_init.sql",
    ):
        assert required in names
    assert not any(name.startswith("tests/") for name in names)
