-- Reverses 0006_operations.sql.
COMMENT ON FUNCTION pgoutbox_relay_idle_v2() IS NULL;
COMMENT ON FUNCTION pgoutbox_relay_busy_v2() IS NULL;
COMMENT ON FUNCTION pgoutbox_notify_v2() IS NULL;
COMMENT ON FUNCTION pgoutbox_channel_v1(text) IS NULL;
DROP INDEX IF EXISTS pgoutbox_event_dead_stream_id;
DROP INDEX IF EXISTS pgoutbox_event_dead_id;
