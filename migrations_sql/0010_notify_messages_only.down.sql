-- Reverses 0010_notify_messages_only.sql: the version 2 trigger again.
DROP TRIGGER IF EXISTS pgoutbox_notify_v3 ON pgoutbox_event;
CREATE TRIGGER pgoutbox_notify_v2
    AFTER INSERT ON pgoutbox_event
    REFERENCING NEW TABLE AS pgoutbox_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pgoutbox_notify_v2();
DROP FUNCTION IF EXISTS pgoutbox_notify_v3();
