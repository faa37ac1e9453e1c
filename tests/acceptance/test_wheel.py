"""The built wheel carries the SQL migrations: install it in a fresh virtualenv, migrate."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import psycopg
import pytest

from tests.support.relay_runner import ROOT

SETTINGS = """
import os
SECRET_KEY = "x"
USE_TZ = True
INSTALLED_APPS = ["pgoutbox"]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql",
    "HOST": os.environ["PGHOST"], "PORT": os.environ["PGPORT"],
    "USER": os.environ["PGUSER"], "NAME": os.environ["PGDATABASE"]}}
"""


def _run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.packaging
def test_wheel_installs_and_migrates_an_empty_database(tmp_path, empty_database):
    _run(sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path / "dist", ROOT, timeout=300)
    [wheel] = (tmp_path / "dist").glob("pgoutbox-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pgoutbox/migrations_sql/0001_initial.sql" in names
    assert "pgoutbox/sql/queries.sql" in names

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, timeout=120)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", wheel, timeout=600)
    (tmp_path / "wheel_settings.py").write_text(SETTINGS)
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "wheel_settings",
        "PGHOST": empty_database["host"],
        "PGPORT": str(empty_database["port"]),
        "PGUSER": empty_database["user"],
        "PGDATABASE": empty_database["dbname"],
    }
    # Run from tmp_path so the source tree cannot be imported instead of the wheel.
    origin = _run(python, "-c", "import pgoutbox; print(pgoutbox.__file__)", env=env, cwd=tmp_path)
    assert str(venv) in origin.stdout
    _run(python, "-m", "django", "migrate", "pgoutbox", env=env, cwd=tmp_path, timeout=120)

    with psycopg.connect(**empty_database) as conn:
        conn.execute("INSERT INTO pgoutbox_event (destination, body) VALUES ('/queue/x', 'y')")
        triggers = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'pgoutbox_event'::regclass ORDER BY 1"
        ).fetchall()
    assert triggers == [("pgoutbox_body_v1",), ("pgoutbox_notify_v3",)]
