"""Admin indexes and the functions' hash comments, from migrations_sql/0006_operations.sql."""

from django.db import migrations

from pgoutbox.sql import migration_sql


class Migration(migrations.Migration):
    # Numbered 0006: 0004 and 0005 come before it in the schema's history.
    dependencies = [("pgoutbox", "0005_inbox_per_consumer")]

    operations = [
        migrations.RunSQL(
            migration_sql("0006_operations.sql"), migration_sql("0006_operations.down.sql")
        )
    ]
