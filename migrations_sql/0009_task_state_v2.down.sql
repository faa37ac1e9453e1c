-- Reverses 0009_task_state_v2.sql.
ALTER TABLE pgoutbox_event DROP CONSTRAINT IF EXISTS pgoutbox_ordered_message_needs_a_stream;
COMMENT ON VIEW pgoutbox_task_state_v1 IS NULL;
DROP VIEW IF EXISTS pgoutbox_task_state_v2;
DROP FUNCTION IF EXISTS pgoutbox_task_lost_error_v1();
