//! Rule 3 of the money rules: a fee left outstanding is not lost. It is collected on the
//! schedule of `policy.collection_schedule` (offsets from when it was left outstanding), each
//! attempt under a key of its own, then written off, unless finance waives it first. This
//! module names the states of that collection and its idempotency keys.

use crate::parse::text_enum;

/// Where the collection of one outstanding fee stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectionState {
    /// Still owed: an attempt is due (or running).
    Outstanding,
    /// An attempt charged it.
    Collected,
    /// Finance waived it, with a reason.
    Waived,
    /// Every attempt failed: the debt is written off.
    WrittenOff,
}

text_enum!(CollectionState, "collection state", {
    Outstanding => "outstanding",
    Collected => "collected",
    Waived => "waived",
    WrittenOff => "written_off",
});

impl CollectionState {
    /// Whether the collection has ended.
    pub fn is_final(&self) -> bool {
        *self != CollectionState::Outstanding
    }
}

/// The `FeeCollection` workflow of the fee keyed `fee_key`: `fee-collection-<fee key>`.
pub fn workflow_id(fee_key: &str) -> String {
    format!("fee-collection-{fee_key}")
}

/// The key of the `attempt`th collection attempt (from 1): the charge's key at the processor
/// and, when it succeeds, its ledger transaction's.
pub fn attempt_key(fee_key: &str, attempt: u32) -> String {
    format!("{fee_key}:collect:{attempt}")
}

/// The fee key of an attempt's key (`<fee key>:collect:<n>`), if it is one.
pub fn fee_of_attempt(key: &str) -> Option<&str> {
    let (fee_key, attempt) = key.rsplit_once(":collect:")?;
    attempt.parse::<u32>().is_ok().then_some(fee_key)
}

/// The ledger key of the fee's end without collection (`waived` or `written_off`).
pub fn settlement_key(fee_key: &str, state: CollectionState) -> String {
    format!("{fee_key}:{state}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_derive_from_the_fee_key() {
        let fee = "live-session-x:no_show_fee:r0";
        assert_eq!(workflow_id(fee), "fee-collection-live-session-x:no_show_fee:r0");
        assert_eq!(attempt_key(fee, 2), "live-session-x:no_show_fee:r0:collect:2");
        assert_eq!(
            settlement_key(fee, CollectionState::WrittenOff),
            "live-session-x:no_show_fee:r0:written_off"
        );
        assert_eq!(fee_of_attempt(&attempt_key(fee, 2)), Some(fee));
        assert_eq!(fee_of_attempt(fee), None);
        assert!(CollectionState::Waived.is_final() && !CollectionState::Outstanding.is_final());
    }
}
