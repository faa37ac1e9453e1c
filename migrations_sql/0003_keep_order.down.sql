DROP INDEX IF EXISTS pgoutbox_event_sent_at;
DROP INDEX IF EXISTS pgoutbox_event_pending_ordered_stream_id;
ALTER TABLE pgoutbox_event DROP COLUMN IF EXISTS ordered;
