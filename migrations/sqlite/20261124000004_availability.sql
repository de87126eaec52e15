-- SQLite twin of migrations/postgres: UUIDs as 16-byte BLOBs, instants as RFC 3339 TEXT.
-- SQLite has no exclusion constraints: the overlap check runs inside the booking's write
-- transaction (BEGIN IMMEDIATE), which SQLite runs one at a time, on the existing
-- (provider_id, starts_at) and (client_id, starts_at) indexes.

CREATE TABLE provider_availability (
    provider_id  BLOB PRIMARY KEY REFERENCES providers (id),
    availability TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE availability_requests (
    id          BLOB PRIMARY KEY,
    client_id   BLOB NOT NULL REFERENCES clients (id),
    provider_id BLOB NOT NULL REFERENCES providers (id),
    windows     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
