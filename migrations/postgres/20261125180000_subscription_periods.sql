-- Issue 11, rule 1: subscription credits each billing period. One row per period granted, keyed
-- by client and period number, so a period is granted once however often its grant is retried.
CREATE TABLE subscription_periods (
    client_id    UUID NOT NULL REFERENCES clients (id),
    number       BIGINT NOT NULL CHECK (number >= 1),
    plan         TEXT NOT NULL,
    starts_at    TIMESTAMPTZ NOT NULL,
    ends_at      TIMESTAMPTZ NOT NULL,
    granted      BIGINT NOT NULL,
    carried_over BIGINT NOT NULL,
    expired      BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client_id, number),
    CHECK (ends_at >= starts_at)
);

-- Subscription clients enrolled before periods existed got their credits once, at enrolment:
-- that is their period 1, ended at once, so their next period begins when their subscription
-- workflow starts (at their next PUT) instead of granting period 1 twice.
INSERT INTO subscription_periods (client_id, number, plan, starts_at, ends_at, granted, carried_over, expired, created_at)
    SELECT id, 1, plan, created_at, created_at, 0, 0, 0, created_at
    FROM clients WHERE coverage = 'subscription';

-- A plan credit unused when a period begins, beyond the plan's carry-over, is `expired`.
ALTER TABLE credits DROP CONSTRAINT credits_status_check;
ALTER TABLE credits ADD CONSTRAINT credits_status_check
    CHECK (status IN ('available', 'reserved', 'consumed', 'forfeited', 'revoked', 'expired'));
ALTER TABLE credits DROP CONSTRAINT credits_check;
ALTER TABLE credits ADD CONSTRAINT credits_check
    CHECK ((status IN ('available', 'revoked', 'expired')) = (session_id IS NULL));
