-- Keep-order function events (jaiminho's 'keep-order' strategy). Immutable.
--
-- An ordered row is run only by the relay holding its stream's advisory lock, strictly in id
-- order; the ordinary claim query leaves it alone. Producers of an ordered stream take a
-- transaction-level advisory lock on the stream before inserting, so id order is commit order.

ALTER TABLE pgoutbox_event ADD COLUMN ordered boolean NOT NULL DEFAULT false;

-- The head of each ordered stream, found without walking the unordered backlog.
CREATE INDEX pgoutbox_event_pending_ordered_stream_id
    ON pgoutbox_event (stream, id) WHERE status = 'pending' AND ordered;

-- Kept rows ('sent', DELETE_AFTER_SEND = False) are removed by event_cleaner by age.
CREATE INDEX pgoutbox_event_sent_at
    ON pgoutbox_event (sent_at) WHERE status = 'sent';
