"""System checks on the real test database: each id is produced by the fault it names."""

from __future__ import annotations

import io
import json

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import override_settings

from pgoutbox import schema
from pgoutbox.producer.functions import save_to_outbox
from tests.app import outbox
from tests.support.relay_runner import manage_env, run_command

pytestmark = pytest.mark.django_db


def _ids(**kwargs: object) -> list[str]:
    return [m.id for m in checks.run_checks(**kwargs) if (m.id or "").startswith("pgoutbox.")]


def _messages(check_id: str) -> list[str]:
    return [
        f"{m.msg} | {m.hint}" for m in checks.run_checks(databases=["default"]) if m.id == check_id
    ]


def _sql(statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


def _status_json() -> dict:
    out = io.StringIO()
    call_command("outbox_status", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_a_migrated_database_passes_every_check():
    assert _ids(databases=["default"]) == []
    assert _status_json()["trigger"] == "installed"


def test_database_checks_run_only_with_databases():
    _sql("ALTER TABLE pgoutbox_event DISABLE TRIGGER pgoutbox_notify_v3")
    assert _ids() == []  # plain "manage.py check": no database access
    assert _ids(databases=["default"]) == ["pgoutbox.E001"]
    with pytest.raises(SystemCheckError, match=r"pgoutbox\.E001.*trigger.*is disabled"):
        call_command("check", "--database", "default", stdout=io.StringIO())


def _forget_latest_migration() -> str:
    """Show the latest pgoutbox migration, whichever it is, as not applied; return its name."""
    [(_app, latest)] = MigrationLoader(None).graph.leaf_nodes("pgoutbox")
    _sql(f"DELETE FROM django_migrations WHERE app = 'pgoutbox' AND name = '{latest}'")
    return latest


def test_migrate_is_not_stopped_by_the_schema_it_fixes():
    _sql("ALTER TABLE pgoutbox_event DISABLE TRIGGER pgoutbox_notify_v3")
    latest = _forget_latest_migration()
    # Its objects go too: migrating back must not trip over objects of a later migration.
    down = schema.migrations_dir() / f"{latest}.down.sql"
    if down.exists():
        _sql(down.read_text())
    assert _ids(databases=["default"]) == ["pgoutbox.E003"]
    # migrate runs the database checks first (manage.py does; call_command only when asked)
    call_command("migrate", "pgoutbox", "0003", skip_checks=False, stdout=io.StringIO())


def test_missing_trigger_is_e001():
    _sql("DROP TRIGGER pgoutbox_notify_v3 ON pgoutbox_event")
    assert _ids(databases=["default"]) == ["pgoutbox.E001"]
    assert "is missing" in _messages("pgoutbox.E001")[0]
    assert _status_json()["trigger"] == "missing"


def test_a_function_edited_by_hand_is_outdated():
    _sql(
        "CREATE OR REPLACE FUNCTION pgoutbox_relay_busy_v2() RETURNS boolean LANGUAGE sql "
        "AS $$ SELECT true $$"
    )
    [message] = _messages("pgoutbox.E002")
    assert "pgoutbox_relay_busy_v2() was changed after it was installed" in message
    status = _status_json()
    assert status["trigger"] == "outdated"
    assert status["healthy"] is False
    assert "trigger outdated" in status["problems"]


def test_a_function_installed_from_other_sql_is_outdated():
    _sql("COMMENT ON FUNCTION pgoutbox_notify_v3() IS 'pgoutbox sha256:0123'")
    [message] = _messages("pgoutbox.E002")
    assert "pgoutbox_notify_v3() was installed from other SQL" in message
    _sql("COMMENT ON FUNCTION pgoutbox_notify_v3() IS NULL")
    assert "installed from other SQL (comment None)" in _messages("pgoutbox.E002")[0]


def test_an_older_trigger_version_is_outdated_not_missing():
    _sql("DROP TRIGGER pgoutbox_notify_v3 ON pgoutbox_event")
    _sql(
        "CREATE TRIGGER pgoutbox_notify_v2 AFTER INSERT ON pgoutbox_event "
        "REFERENCING NEW TABLE AS pgoutbox_new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION pgoutbox_notify_v2()"
    )
    assert _ids(databases=["default"]) == ["pgoutbox.E002"]
    assert (
        "pgoutbox_notify_v2 is installed instead of pgoutbox_notify_v3"
        in _messages("pgoutbox.E002")[0]
    )
    assert _status_json()["trigger"] == "outdated"


def test_shipped_hashes_match_the_comments_of_the_migrations():
    # 0006 comments the functions defined before it; later functions carry theirs in the
    # migration defining them.
    text = "".join(
        path.read_text()
        for path in schema.migrations_dir().glob("[0-9]*.sql")
        if not path.name.endswith(".down.sql")
    )
    for name, digest in schema.shipped_hashes().items():
        assert f"{schema.COMMENT_PREFIX}{digest}" in text, name


def test_unapplied_migrations_are_e003():
    latest = _forget_latest_migration()
    assert _ids(databases=["default"]) == ["pgoutbox.E003"]
    [message] = _messages("pgoutbox.E003")
    assert latest in message and "migrate pgoutbox --database default" in message


@save_to_outbox
def registered_here(n: int) -> None:
    outbox.RUNS.append(("registered_here", n))


def test_pending_calls_of_unregistered_functions_are_w001():
    _sql(
        "INSERT INTO pgoutbox_event (kind, function, args) VALUES "
        "('call', 'billing.tasks.charge', '{\"args\": [], \"kwargs\": {}}'), "
        "('call', 'billing.tasks.charge', '{\"args\": [], \"kwargs\": {}}')"
    )
    registered_here(1)  # a registered function's pending row raises nothing
    assert _ids(databases=["default"]) == ["pgoutbox.W001"]
    [message] = _messages("pgoutbox.W001")
    assert "2 pending call events" in message and "'billing.tasks.charge'" in message
    assert "Add 'billing.tasks' to PGOUTBOX['FUNCTION_MODULES']" in message
    _sql("UPDATE pgoutbox_event SET status = 'dead' WHERE function = 'billing.tasks.charge'")
    assert _ids(databases=["default"]) == []  # only pending rows matter


def test_w001_names_the_module_of_an_unregistered_django_task():
    _sql(
        "INSERT INTO pgoutbox_event (kind, function, args) VALUES "
        "('call', 'task:billing.tasks.charge', '{\"args\": [], \"kwargs\": {}}')"
    )
    [message] = _messages("pgoutbox.W001")
    assert "Add 'billing.tasks' to PGOUTBOX['FUNCTION_MODULES']" in message


@pytest.mark.parametrize(
    ("pgoutbox_settings", "check_id", "text"),
    [
        ({"BATCH_SIZE": "many"}, "pgoutbox.E004", "PGOUTBOX['BATCH_SIZE'] must be a positive int"),
        ({"DATABASE": "elsewhere"}, "pgoutbox.E005", "'elsewhere', which is not in DATABASES"),
    ],
)
def test_settings_check_needs_no_database(pgoutbox_settings, check_id, text):
    with override_settings(PGOUTBOX=pgoutbox_settings):
        found = [m for m in checks.run_checks() if m.id == check_id]
    assert len(found) == 1 and text in found[0].msg


def test_an_unreachable_database_is_a_warning_not_a_crash():
    # A closed port: the listener must be able to start during an outage and wait it out.
    result = run_command(["check", "--database", "default"], env=manage_env(PGPORT="9"))
    assert result.returncode == 0, result.stderr
    assert "pgoutbox.W002" in result.stderr and "could not be inspected" in result.stderr
