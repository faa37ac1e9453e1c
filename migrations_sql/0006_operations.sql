-- Operations: the admin's dead-event views and the system checks' view of the functions.
-- Immutable.

-- Dead events newest first, and the streams that have some, without scanning the table
-- (dead rows are few: these indexes cost the hot path next to nothing).
CREATE INDEX pgoutbox_event_dead_id
    ON pgoutbox_event (id) WHERE status = 'dead';
CREATE INDEX pgoutbox_event_dead_stream_id
    ON pgoutbox_event (stream, id) WHERE status = 'dead';

-- The sha256 of each function's body as migrations_sql/ defines it (pgoutbox.schema computes
-- the same from the files): the system check pgoutbox.E002 and outbox_status compare it with
-- the shipped SQL and with the body actually installed. A migration that redefines a function
-- sets its new hash here again.
COMMENT ON FUNCTION pgoutbox_channel_v1(text)
    IS 'pgoutbox sha256:159534284c6e04a42c7613569de8ad5bb3609f1882877c9dd93a5f48f24dd7d9';
COMMENT ON FUNCTION pgoutbox_notify_v2()
    IS 'pgoutbox sha256:48272cc1c1d74da5de4f55b596937391058a4a0729176677b071b6dd01750112';
COMMENT ON FUNCTION pgoutbox_relay_busy_v2()
    IS 'pgoutbox sha256:34ebc95f434720488168a659fcd92accb7a10e6765adc88827a2bf38ece97ac3';
COMMENT ON FUNCTION pgoutbox_relay_idle_v2()
    IS 'pgoutbox sha256:4a6ef802eb0d8dc1c250108022d73c5ac1942ed887ca6f6139b9007091b16183';
