//! HMAC-SHA256 signatures over `<unix timestamp>.<body>`, the scheme of both inbound media
//! events and outbound webhooks: a receiver checks the signature and refuses a timestamp too far
//! from its clock, so a captured request cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature of `body` sent at `timestamp` (unix seconds), as `v1=<hex>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp is too far from now (a replay, or a wrong clock).
    #[error("the timestamp is {0} s away from now, more than allowed")]
    Stale(u64),
    /// The signature is not the body's.
    #[error("the signature does not match")]
    Mismatch,
}

/// Checks `signature` of `body` sent at `timestamp`, at most `tolerance_secs` from `now`. Any
/// timestamp is judged, however extreme: the distance to `now` cannot overflow.
pub fn verify(
    secret: &str,
    timestamp: i64,
    body: &[u8],
    signature: &str,
    now: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let skew = now.abs_diff(timestamp);
    if skew > tolerance_secs {
        return Err(SignatureError::Stale(skew));
    }
    let expected = sign(secret, timestamp, body);
    let matches = expected.len() == signature.len()
        && expected.bytes().zip(signature.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_secret_and_time() {
        let signature = sign("s3cret", 1_000, b"{\"a\":1}");
        assert_eq!(verify("s3cret", 1_000, b"{\"a\":1}", &signature, 1_010, 300), Ok(()));
        assert_eq!(
            verify("s3cret", 1_000, b"{\"a\":2}", &signature, 1_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("other", 1_000, b"{\"a\":1}", &signature, 1_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("s3cret", 1_000, b"{\"a\":1}", &signature, 2_000, 300),
            Err(SignatureError::Stale(1_000))
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        for (timestamp, now) in [(i64::MIN, i64::MAX), (i64::MAX, i64::MIN), (i64::MIN, 0)] {
            let refused = verify("s", timestamp, b"", "v1=", now, 300);
            assert!(matches!(refused, Err(SignatureError::Stale(_))), "{timestamp} at {now}");
        }
        assert_eq!(
            verify("s", i64::MIN, b"", "", i64::MAX, 300),
            Err(SignatureError::Stale(u64::MAX))
        );
    }
}
