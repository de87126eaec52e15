-- SQLite twin of migrations/postgres. Issue 11. A bought credit whose purchase is refunded in
-- full is `revoked`: it leaves the client's balance and no session may hold it. SQLite cannot
-- change a CHECK, so the table is rebuilt (nothing references it).
CREATE TABLE credits_new (
    id             BLOB PRIMARY KEY,
    client_id      BLOB NOT NULL REFERENCES clients (id),
    kind           TEXT NOT NULL CHECK (kind IN ('credit', 'authorization')),
    source         TEXT NOT NULL CHECK (source IN ('plan_grant', 'purchase', 'intake_authorization', 'next_authorization')),
    status         TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'consumed', 'forfeited', 'revoked')),
    session_id     BLOB REFERENCES sessions (id),
    -- For an authorization: the estimate the client authorized.
    estimate_minor INTEGER,
    currency       TEXT,
    -- For a purchase or a next-session authorization: what made it, so a retry makes nothing new.
    idempotency_key TEXT UNIQUE,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    CHECK ((status IN ('available', 'revoked')) = (session_id IS NULL))
);
INSERT INTO credits_new (id, client_id, kind, source, status, session_id, estimate_minor, currency,
                         idempotency_key, created_at, updated_at)
    SELECT id, client_id, kind, source, status, session_id, estimate_minor, currency,
           idempotency_key, created_at, updated_at
    FROM credits;
DROP TABLE credits;
ALTER TABLE credits_new RENAME TO credits;
CREATE INDEX credits_client_status ON credits (client_id, kind, status, created_at);
CREATE INDEX credits_session ON credits (session_id, status);

-- An insurance authorization's ledger transaction names the session after which the client
-- authorized. Those posted before named it only in their key, `live-session-<uuid>:next_authorization`:
-- the one correction the append-only ledger is given, with its guard lifted for this statement.
DROP TRIGGER ledger_transactions_no_update;
UPDATE ledger_transactions
   SET session_id = unhex(replace(substr(idempotency_key, 14, 36), '-', '')),
       workflow_id = substr(idempotency_key, 1, 49)
 WHERE kind = 'insurance_authorization' AND session_id IS NULL
   AND idempotency_key GLOB 'live-session-????????-????-????-????-????????????:*';
CREATE TRIGGER ledger_transactions_no_update BEFORE UPDATE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE on ledger_transactions is refused'); END;
