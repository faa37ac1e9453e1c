-- Reverses 0001_initial.sql (Django's "migrate pgoutbox zero").
DROP TRIGGER IF EXISTS pgoutbox_notify_v1 ON pgoutbox_event;
DROP FUNCTION IF EXISTS pgoutbox_notify_v1();
DROP FUNCTION IF EXISTS pgoutbox_channel_v1(text);
DROP TABLE IF EXISTS pgoutbox_received;
DROP TABLE IF EXISTS pgoutbox_event;
