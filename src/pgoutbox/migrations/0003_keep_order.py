"""Keep-order streams from migrations_sql/0003_keep_order.sql: the ``ordered`` column."""

from django.db import migrations, models

from pgoutbox.sql import migration_sql


class Migration(migrations.Migration):
    dependencies = [("pgoutbox", "0002_adaptive_notify")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    migration_sql("0003_keep_order.sql"),
                    migration_sql("0003_keep_order.down.sql"),
                )
            ],
            state_operations=[
                migrations.AddField(
                    model_name="outboxevent",
                    name="ordered",
                    field=models.BooleanField(default=False),
                )
            ],
        )
    ]
