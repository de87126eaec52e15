-- SQLite twin of migrations/postgres: UUIDs as 16-byte BLOBs, instants as RFC 3339 TEXT.
-- People as scheduling needs them; contact details stay here, never in workflow history.
CREATE TABLE clients (
    id           BLOB PRIMARY KEY,
    coverage     TEXT NOT NULL CHECK (coverage IN ('subscription', 'insurance', 'eap')),
    plan         TEXT NOT NULL,
    time_zone    TEXT NOT NULL,
    email        TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE providers (
    id           BLOB PRIMARY KEY,
    specialty    TEXT NOT NULL CHECK (specialty IN ('therapist', 'psychiatrist')),
    time_zone    TEXT NOT NULL,
    email        TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- The read model: one row per session, written by the workflow's activities at every change.
CREATE TABLE sessions (
    id          BLOB PRIMARY KEY,
    workflow_id TEXT NOT NULL UNIQUE,
    client_id   BLOB NOT NULL REFERENCES clients (id),
    provider_id BLOB NOT NULL REFERENCES providers (id),
    state       TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    snapshot    TEXT NOT NULL,
    -- Why it was cancelled, if the canceller said; written by the API, not by the workflow.
    cancel_reason TEXT,
    updated_at  TEXT NOT NULL
);
CREATE INDEX sessions_client_starts ON sessions (client_id, starts_at, id);
CREATE INDEX sessions_provider_starts ON sessions (provider_id, starts_at, id);
CREATE INDEX sessions_starts ON sessions (starts_at, id);

-- One row per session credit or insurance authorization (what a booking holds). `available`
-- ones belong to nobody yet; a reserved, consumed or forfeited one names the session holding it.
CREATE TABLE credits (
    id             BLOB PRIMARY KEY,
    client_id      BLOB NOT NULL REFERENCES clients (id),
    kind           TEXT NOT NULL CHECK (kind IN ('credit', 'authorization')),
    source         TEXT NOT NULL CHECK (source IN ('plan_grant', 'purchase', 'intake_authorization', 'next_authorization')),
    status         TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'consumed', 'forfeited')),
    session_id     BLOB REFERENCES sessions (id),
    -- For an authorization: the estimate the client authorized.
    estimate_minor INTEGER,
    currency       TEXT,
    -- For a purchase or a next-session authorization: what made it, so a retry makes nothing new.
    idempotency_key TEXT UNIQUE,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    CHECK ((status = 'available') = (session_id IS NULL))
);
CREATE INDEX credits_client_status ON credits (client_id, kind, status, created_at);
CREATE INDEX credits_session ON credits (session_id, status);

-- Money charged: credit purchases and fees, each once per idempotency key.
CREATE TABLE charges (
    id              BLOB PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    client_id       BLOB NOT NULL REFERENCES clients (id),
    session_id      BLOB,
    kind            TEXT NOT NULL CHECK (kind IN ('credit_purchase', 'late_cancel_fee', 'no_show_fee')),
    amount_minor    INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX charges_session ON charges (session_id);

-- What a client's room shows. The key makes posting idempotent.
CREATE TABLE room_messages (
    id              BLOB PRIMARY KEY,
    client_id       BLOB NOT NULL REFERENCES clients (id),
    -- A live or a messaging session.
    session_id      BLOB,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL
);
CREATE INDEX room_messages_client ON room_messages (client_id, created_at, id);

-- The built-in media service: one room per session, one join token per person.
CREATE TABLE media_rooms (
    id         BLOB PRIMARY KEY,
    session_id BLOB NOT NULL UNIQUE REFERENCES sessions (id),
    opens_at   TEXT NOT NULL,
    closes_at  TEXT NOT NULL,
    ended_at   TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE join_tokens (
    token           TEXT PRIMARY KEY,
    room_id         BLOB NOT NULL REFERENCES media_rooms (id),
    session_id      BLOB NOT NULL REFERENCES sessions (id),
    party           TEXT NOT NULL CHECK (party IN ('client', 'provider')),
    person_id       BLOB NOT NULL,
    first_joined_at TEXT,
    UNIQUE (session_id, party)
);

-- Asynchronous messaging sessions: their read model.
CREATE TABLE messaging_sessions (
    id          BLOB PRIMARY KEY,
    workflow_id TEXT NOT NULL UNIQUE,
    client_id   BLOB NOT NULL REFERENCES clients (id),
    provider_id BLOB NOT NULL REFERENCES providers (id),
    state       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    snapshot    TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX messaging_sessions_client ON messaging_sessions (client_id);
