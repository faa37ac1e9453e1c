"""Inbox dedupe per consumer, from migrations_sql/0005_inbox_per_consumer.sql."""

from django.db import migrations, models

from pgoutbox.sql import migration_sql


class Migration(migrations.Migration):
    dependencies = [("pgoutbox", "0004_plain_sql_producers")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    migration_sql("0005_inbox_per_consumer.sql"),
                    migration_sql("0005_inbox_per_consumer.down.sql"),
                )
            ],
            state_operations=[
                migrations.AddField(
                    model_name="receivedmessage",
                    name="consumer",
                    field=models.TextField(default=""),
                ),
                migrations.AlterField(
                    model_name="receivedmessage",
                    name="message_id",
                    field=models.TextField(),
                ),
                migrations.AddConstraint(
                    model_name="receivedmessage",
                    constraint=models.UniqueConstraint(
                        fields=("consumer", "message_id"),
                        name="pgoutbox_received_consumer_message_id_key",
                    ),
                ),
            ],
        )
    ]
