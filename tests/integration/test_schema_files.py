"""Every schema file has its Django migration, and the ORM state matches the migrations."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from pgoutbox.sql import migrations_dir

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "pgoutbox" / "migrations"


def test_every_sql_file_has_a_django_migration_applying_it():
    for sql in sorted(migrations_dir().glob("[0-9]*.sql")):
        if sql.name.endswith(".down.sql"):
            continue
        module = MIGRATIONS / f"{sql.stem}.py"
        assert module.exists(), f"{sql.name} has no Django migration {module.name}"
        text = module.read_text()
        assert f'migration_sql("{sql.name}")' in text, module.name
        assert (migrations_dir() / f"{sql.stem}.down.sql").exists(), f"{sql.name}: no down file"


@pytest.mark.django_db
def test_models_match_the_migrations():
    call_command("makemigrations", "pgoutbox", "--check", "--dry-run", stdout=io.StringIO())
