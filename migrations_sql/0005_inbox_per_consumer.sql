-- pgoutbox schema, version 5: the consumer inbox deduplicates per consumer.
-- Immutable: a change is a new numbered file.
--
-- One message fanned out to two queues of one service is two deliveries, one per consumer:
-- the key is (consumer, message_id), where consumer is the queue the subscription reads.
-- Rows written before this migration keep consumer = '' and match no consumer any more: a
-- message redelivered across the upgrade may run once more (at-least-once, as documented).

ALTER TABLE pgoutbox_received
    ADD COLUMN consumer text NOT NULL DEFAULT '';

ALTER TABLE pgoutbox_received
    DROP CONSTRAINT pgoutbox_received_message_id_key;

ALTER TABLE pgoutbox_received
    ADD CONSTRAINT pgoutbox_received_consumer_message_id_key UNIQUE (consumer, message_id);
