-- Issue 11. A bought credit whose purchase is refunded in full is `revoked`: it leaves the
-- client's balance and no session may hold it.
ALTER TABLE credits DROP CONSTRAINT credits_status_check;
ALTER TABLE credits ADD CONSTRAINT credits_status_check
    CHECK (status IN ('available', 'reserved', 'consumed', 'forfeited', 'revoked'));
ALTER TABLE credits DROP CONSTRAINT credits_check;
ALTER TABLE credits ADD CONSTRAINT credits_check
    CHECK ((status IN ('available', 'revoked')) = (session_id IS NULL));

-- An insurance authorization's ledger transaction names the session after which the client
-- authorized. Those posted before named it only in their key, `live-session-<uuid>:next_authorization`:
-- the one correction the append-only ledger is given, with its guard lifted for this statement.
ALTER TABLE ledger_transactions DISABLE TRIGGER ledger_transactions_append_only;
UPDATE ledger_transactions
   SET session_id = CAST(substring(idempotency_key FROM '^live-session-([0-9a-f-]{36}):') AS UUID),
       workflow_id = substring(idempotency_key FROM '^(live-session-[0-9a-f-]{36}):')
 WHERE kind = 'insurance_authorization' AND session_id IS NULL
   AND idempotency_key ~ '^live-session-[0-9a-f-]{36}:';
ALTER TABLE ledger_transactions ENABLE TRIGGER ledger_transactions_append_only;
