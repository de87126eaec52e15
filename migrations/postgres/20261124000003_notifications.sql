-- Emails sent, one row per key and recipient, so a retried delivery sends nobody twice.
CREATE TABLE email_deliveries (
    idempotency_key TEXT NOT NULL,
    recipient       TEXT NOT NULL CHECK (recipient IN ('client', 'provider')),
    message_id      TEXT NOT NULL,
    sent_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (idempotency_key, recipient)
);

-- Media service events received (signed), so a duplicate is recognised and ignored.
CREATE TABLE media_events (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    room_id     UUID NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);

-- Where each join token sends its holder: the built-in room page, or the hosted provider's URL.
ALTER TABLE join_tokens ADD COLUMN media_url TEXT;
