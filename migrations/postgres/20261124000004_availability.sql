-- No double booking, enforced by the database: a provider, and a client, cannot be in two
-- sessions whose half-open times overlap while they hold their slot (requested or confirmed).
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE sessions ADD CONSTRAINT sessions_provider_no_overlap
    EXCLUDE USING gist (provider_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
    WHERE (state IN ('requested', 'confirmed'));
ALTER TABLE sessions ADD CONSTRAINT sessions_client_no_overlap
    EXCLUDE USING gist (client_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
    WHERE (state IN ('requested', 'confirmed'));

-- Weekly hours and dated exceptions, in the provider's zone.
CREATE TABLE provider_availability (
    provider_id  UUID PRIMARY KEY REFERENCES providers (id),
    availability JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- "Can't find a time": windows a client shared with a provider.
CREATE TABLE availability_requests (
    id          UUID PRIMARY KEY,
    client_id   UUID NOT NULL REFERENCES clients (id),
    provider_id UUID NOT NULL REFERENCES providers (id),
    windows     JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
