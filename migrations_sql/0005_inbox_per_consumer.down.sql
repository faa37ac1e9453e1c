-- Undo 0005: one inbox row per message id again. Where several consumers recorded the same
-- message id, only the oldest row is kept (the others could not satisfy the old key).

ALTER TABLE pgoutbox_received
    DROP CONSTRAINT pgoutbox_received_consumer_message_id_key;

DELETE FROM pgoutbox_received AS r
USING pgoutbox_received AS older
WHERE older.message_id = r.message_id AND older.id < r.id;

ALTER TABLE pgoutbox_received
    ADD CONSTRAINT pgoutbox_received_message_id_key UNIQUE (message_id);

ALTER TABLE pgoutbox_received
    DROP COLUMN consumer;
