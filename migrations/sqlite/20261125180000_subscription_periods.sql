-- SQLite twin of migrations/postgres. Issue 11, rule 1: subscription credits each billing
-- period. One row per period granted, keyed by client and period number, so a period is granted
-- once however often its grant is retried.
CREATE TABLE subscription_periods (
    client_id    BLOB NOT NULL REFERENCES clients (id),
    number       INTEGER NOT NULL CHECK (number >= 1),
    plan         TEXT NOT NULL,
    starts_at    TEXT NOT NULL,
    ends_at      TEXT NOT NULL,
    granted      INTEGER NOT NULL,
    carried_over INTEGER NOT NULL,
    expired      INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (client_id, number)
);

-- Subscription clients enrolled before periods existed got their credits once, at enrolment:
-- that is their period 1, ended at once, so their next period begins when their subscription
-- workflow starts (at their next PUT) instead of granting period 1 twice.
INSERT INTO subscription_periods (client_id, number, plan, starts_at, ends_at, granted, carried_over, expired, created_at)
    SELECT id, 1, plan, created_at, created_at, 0, 0, 0, created_at
    FROM clients WHERE coverage = 'subscription';

-- A plan credit unused when a period begins, beyond the plan's carry-over, is `expired`. SQLite
-- cannot change a CHECK, so the table is rebuilt (nothing references it).
CREATE TABLE credits_new (
    id             BLOB PRIMARY KEY,
    client_id      BLOB NOT NULL REFERENCES clients (id),
    kind           TEXT NOT NULL CHECK (kind IN ('credit', 'authorization')),
    source         TEXT NOT NULL CHECK (source IN ('plan_grant', 'purchase', 'intake_authorization', 'next_authorization')),
    status         TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'consumed', 'forfeited', 'revoked', 'expired')),
    session_id     BLOB REFERENCES sessions (id),
    -- For an authorization: the estimate the client authorized.
    estimate_minor INTEGER,
    currency       TEXT,
    -- For a purchase or a next-session authorization: what made it, so a retry makes nothing new.
    idempotency_key TEXT UNIQUE,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    CHECK ((status IN ('available', 'revoked', 'expired')) = (session_id IS NULL))
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
