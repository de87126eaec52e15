-- Deliveries to the outside world (emails, webhook events), written in the same transaction as
-- the state that reports them and sent by the worker's dispatcher, retried with backoff until
-- accepted. The key is the delivery's idempotency key: one row, however often it is written.
CREATE TABLE outbox (
    key             TEXT PRIMARY KEY,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    sent_at         TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;
