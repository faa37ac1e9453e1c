-- Reverses 0002_adaptive_notify.sql: the version 1 trigger again.
DROP TRIGGER IF EXISTS pgoutbox_notify_v2 ON pgoutbox_event;
CREATE TRIGGER pgoutbox_notify_v1
    AFTER INSERT ON pgoutbox_event
    REFERENCING NEW TABLE AS pgoutbox_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pgoutbox_notify_v1();
DROP FUNCTION IF EXISTS pgoutbox_relay_idle_v2();
DROP FUNCTION IF EXISTS pgoutbox_relay_busy_v2();
DROP FUNCTION IF EXISTS pgoutbox_notify_v2();
