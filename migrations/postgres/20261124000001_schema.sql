-- People as scheduling needs them; contact details stay here, never in workflow history.
CREATE TABLE clients (
    id           UUID PRIMARY KEY,
    coverage     TEXT NOT NULL CHECK (coverage IN ('subscription', 'insurance', 'eap')),
    plan         TEXT NOT NULL,
    time_zone    TEXT NOT NULL,
    email        TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE providers (
    id           UUID PRIMARY KEY,
    specialty    TEXT NOT NULL CHECK (specialty IN ('therapist', 'psychiatrist')),
    time_zone    TEXT NOT NULL,
    email        TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- The read model: one row per session, written by the workflow's activities at every change.
CREATE TABLE sessions (
    id          UUID PRIMARY KEY,
    workflow_id TEXT NOT NULL UNIQUE,
    client_id   UUID NOT NULL REFERENCES clients (id),
    provider_id UUID NOT NULL REFERENCES providers (id),
    state       TEXT NOT NULL,
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL,
    snapshot    JSONB NOT NULL,
    -- Why it was cancelled, if the canceller said; written by the API, not by the workflow.
    cancel_reason TEXT,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_client_starts ON sessions (client_id, starts_at, id);
CREATE INDEX sessions_provider_starts ON sessions (provider_id, starts_at, id);
CREATE INDEX sessions_starts ON sessions (starts_at, id);

-- One row per session credit or insurance authorization (what a booking holds). `available`
-- ones belong to nobody yet; a reserved, consumed or forfeited one names the session holding it.
CREATE TABLE credits (
    id             UUID PRIMARY KEY,
    client_id      UUID NOT NULL REFERENCES clients (id),
    kind           TEXT NOT NULL CHECK (kind IN ('credit', 'authorization')),
    source         TEXT NOT NULL CHECK (source IN ('plan_grant', 'purchase', 'intake_authorization', 'next_authorization')),
    status         TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'consumed', 'forfeited')),
    session_id     UUID REFERENCES sessions (id),
    -- For an authorization: the estimate the client authorized.
    estimate_minor BIGINT,
    currency       TEXT,
    -- For a purchase or a next-session authorization: what made it, so a retry makes nothing new.
    idempotency_key TEXT UNIQUE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    CHECK ((status = 'available') = (session_id IS NULL))
);
CREATE INDEX credits_client_status ON credits (client_id, kind, status, created_at);
CREATE INDEX credits_session ON credits (session_id, status);

-- Money charged: credit purchases and fees, each once per idempotency key.
CREATE TABLE charges (
    id              UUID PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    client_id       UUID NOT NULL REFERENCES clients (id),
    session_id      UUID,
    kind            TEXT NOT NULL CHECK (kind IN ('credit_purchase', 'late_cancel_fee', 'no_show_fee')),
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX charges_session ON charges (session_id);

-- What a client's room shows. The key makes posting idempotent.
CREATE TABLE room_messages (
    id              UUID PRIMARY KEY,
    client_id       UUID NOT NULL REFERENCES clients (id),
    -- A live or a messaging session.
    session_id      UUID,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX room_messages_client ON room_messages (client_id, created_at, id);

-- The built-in media service: one room per session, one join token per person.
CREATE TABLE media_rooms (
    id         UUID PRIMARY KEY,
    session_id UUID NOT NULL UNIQUE REFERENCES sessions (id),
    opens_at   TIMESTAMPTZ NOT NULL,
    closes_at  TIMESTAMPTZ NOT NULL,
    ended_at   TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE join_tokens (
    token           TEXT PRIMARY KEY,
    room_id         UUID NOT NULL REFERENCES media_rooms (id),
    session_id      UUID NOT NULL REFERENCES sessions (id),
    party           TEXT NOT NULL CHECK (party IN ('client', 'provider')),
    person_id       UUID NOT NULL,
    first_joined_at TIMESTAMPTZ,
    UNIQUE (session_id, party)
);

-- Asynchronous messaging sessions: their read model.
CREATE TABLE messaging_sessions (
    id          UUID PRIMARY KEY,
    workflow_id TEXT NOT NULL UNIQUE,
    client_id   UUID NOT NULL REFERENCES clients (id),
    provider_id UUID NOT NULL REFERENCES providers (id),
    state       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    snapshot    JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX messaging_sessions_client ON messaging_sessions (client_id);
