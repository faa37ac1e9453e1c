"""Plain-SQL producers from migrations_sql/0004_plain_sql_producers.sql: ``pgoutbox_send()``
and a ``body`` column that takes text and jsonb; the bytes live in ``body_bytes``."""

from django.db import migrations, models

from pgoutbox.sql import migration_sql


class Migration(migrations.Migration):
    dependencies = [("pgoutbox", "0003_keep_order")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    migration_sql("0004_plain_sql_producers.sql"),
                    migration_sql("0004_plain_sql_producers.down.sql"),
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="outboxevent",
                    name="body",
                    field=models.BinaryField(db_column="body_bytes", default=b""),
                )
            ],
        )
    ]
