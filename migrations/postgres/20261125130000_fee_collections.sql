-- Rule 3 of the money rules: every fee left outstanding is collected on a schedule, then
-- written off, unless finance waives it first. One row per outstanding fee, keyed by the fee's
-- ledger key; its ledger transactions (`fee_collected`, `fee_waived`, `fee_written_off`) are
-- posted in the transaction that moves the row.
CREATE TABLE fee_collections (
    fee_key         TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    client_id       UUID NOT NULL,
    session_id      UUID NOT NULL,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('outstanding', 'collected', 'waived', 'written_off')),
    -- Attempts made so far, and when the next one is due (none once the collection has ended).
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    -- The ledger transaction that ended it.
    settled_key     TEXT,
    waiver_id       UUID,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX fee_collections_client ON fee_collections (client_id, created_at);

-- Waivers finance asked for, with their reason (never sent to Temporal: the collection
-- workflow gets the waiver's id only). A row whose id no collection names was refused.
CREATE TABLE fee_waivers (
    id           UUID PRIMARY KEY,
    fee_key      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX fee_waivers_fee ON fee_waivers (fee_key);
