-- The ledger replaces the `charges` table: every movement of money, credits and insurance
-- authorizations is one transaction of postings that sum to zero per unit (a currency code, or
-- CREDIT / AUTH for session credits and insurance authorizations).
DROP TABLE charges;

CREATE TABLE ledger_transactions (
    id              UUID PRIMARY KEY,
    -- `<workflow id>:<business step>` (or `client-<id>:…` outside a session): never twice.
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    client_id       UUID NOT NULL,
    session_id      UUID,
    workflow_id     TEXT,
    -- The payment processor's id of the charge or refund, for reconciliation.
    processor_ref   TEXT,
    occurred_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX ledger_transactions_session ON ledger_transactions (session_id);
CREATE INDEX ledger_transactions_client ON ledger_transactions (client_id, occurred_at);
CREATE INDEX ledger_transactions_day ON ledger_transactions (occurred_at);

CREATE TABLE ledger_postings (
    id             UUID PRIMARY KEY,
    transaction_id UUID NOT NULL REFERENCES ledger_transactions (id),
    account        TEXT NOT NULL,
    unit           TEXT NOT NULL,
    amount         BIGINT NOT NULL
);
CREATE INDEX ledger_postings_account ON ledger_postings (account, unit);
CREATE INDEX ledger_postings_transaction ON ledger_postings (transaction_id);

-- Append-only: a mistake is undone by a correcting transaction, never by UPDATE or DELETE.
CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % is refused', TG_OP, TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();

-- The built-in sandbox payment processor's own records (what a Stripe-like service would keep).
CREATE TABLE sandbox_payments (
    id              TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
    customer_id     UUID NOT NULL,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('succeeded', 'declined')),
    decline_code    TEXT,
    -- For a refund: the charge it refunds.
    charge_id       TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX sandbox_payments_day ON sandbox_payments (created_at);

-- How the sandbox treats a customer's card, and faults planned for the next calls of a key.
CREATE TABLE sandbox_cards (
    customer_id UUID PRIMARY KEY,
    behaviour   TEXT NOT NULL
);
CREATE TABLE sandbox_faults (
    id                 UUID PRIMARY KEY,
    idempotency_key    TEXT NOT NULL,
    fault              TEXT NOT NULL,
    delay_ms           BIGINT NOT NULL,
    remaining          BIGINT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX sandbox_faults_key ON sandbox_faults (idempotency_key);
-- Every call the sandbox received, in order (tests and operators read it).
CREATE TABLE sandbox_calls (
    id              UUID PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    called_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX sandbox_calls_key ON sandbox_calls (idempotency_key);

-- Idempotency-Key of API requests: the first response, kept for repeats.
CREATE TABLE idempotency (
    caller          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    status_code     INTEGER,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller, idempotency_key)
);
