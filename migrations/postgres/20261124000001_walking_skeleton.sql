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
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_client_starts ON sessions (client_id, starts_at, id);
CREATE INDEX sessions_provider_starts ON sessions (provider_id, starts_at, id);
CREATE INDEX sessions_starts ON sessions (starts_at, id);

-- One row per session credit. A reserved, consumed or forfeited credit names its session.
CREATE TABLE credits (
    id         UUID PRIMARY KEY,
    client_id  UUID NOT NULL REFERENCES clients (id),
    status     TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'consumed', 'forfeited')),
    session_id UUID REFERENCES sessions (id),
    source     TEXT NOT NULL CHECK (source IN ('plan_grant', 'purchase')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK ((status = 'available') = (session_id IS NULL))
);
CREATE INDEX credits_client_status ON credits (client_id, status, created_at);
CREATE UNIQUE INDEX credits_one_per_session ON credits (session_id);

-- What a client's room shows. The key makes posting idempotent.
CREATE TABLE room_messages (
    id              UUID PRIMARY KEY,
    client_id       UUID NOT NULL REFERENCES clients (id),
    session_id      UUID REFERENCES sessions (id),
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
