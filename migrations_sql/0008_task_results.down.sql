-- Reverses 0008_task_results.sql.
DROP VIEW IF EXISTS pgoutbox_task_state_v1;
DROP TABLE IF EXISTS pgoutbox_task_result;
DROP INDEX IF EXISTS pgoutbox_event_pending_call_priority_id;
ALTER TABLE pgoutbox_event DROP COLUMN IF EXISTS priority;
