//! The one error type of the API and how each variant answers: always
//! `{"error": {"code": "<stable_snake_case>", "message": "<for a person>"}}` with the status of
//! API.md's error table.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use livesessions_activities::billing::BillingError;
use livesessions_activities::storage::StorageError;
use livesessions_domain::refusal::RefusalKind;
use livesessions_domain::{
    ActionId, ClientId, ParseError, PurchaseId, Refusal, RefusalCode, SessionId, SessionSnapshot,
    WaiverId,
};
use livesessions_worker::{
    ActionCallError, PurchaseCallError, SessionCallError, SubscriptionStartError,
};
use serde::Serialize;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `400 malformed_request`: the request cannot be read (bad JSON, a field of the wrong form).
    #[error("{0}")]
    Malformed(String),
    /// `401 unauthorized`: no bearer token, or one that does not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// `403 forbidden`: the caller's role may not do this.
    #[error("this role may not do that")]
    Forbidden,
    /// `404 not_found`: nothing here, or nothing the caller may see.
    #[error("not found")]
    NotFound,
    /// `405 method_not_allowed`: the path exists, but not with this method (`Allow` says which).
    #[error("this path does not take that method")]
    MethodNotAllowed,
    /// `413 payload_too_large`: the body is longer than the API reads.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// `415 unsupported_media_type`: the body says it is something other than JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// `402`, `409` or `422` with the refusal's own code.
    #[error("{0}")]
    Refused(Refusal),
    /// `503 service_unavailable`: a dependency did not answer; nothing was changed by this request
    /// (but for one case: a subscription client saved before Temporal refused their renewal
    /// workflow, which the same `PUT` again starts).
    #[error("{0}")]
    Unavailable(String),
    /// `202 Accepted`, not a failure: the request reached the session's workflow (or may have)
    /// but its answer did not come in time. It may still take effect; `Location` says where to
    /// look, and a retry with the same `Idempotency-Key` answers what it did.
    #[error("{0}")]
    Pending(Box<StillRunning>),
    /// `500 internal_error`: a bug or a broken database; the details go to the log only.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// The body of a `202 Accepted`: the session as it is now (absent while a booking is not yet
/// held, and for a credit purchase or a fee's waiver) and where to follow it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StillRunning {
    /// The session (or the credit purchase, the operator's credit adjustment, the fee's
    /// waiver, or the client whose refund is unconfirmed) the request is about.
    pub id: uuid::Uuid,
    /// `/v1/sessions/{id}`: poll it (a booking answers `404` until it is held). For a messaging
    /// session, `/v1/messaging-sessions/{id}` (`404` until it is recorded). For a credit
    /// purchase or adjustment, `/v1/clients/{client_id}/credits`, where the credit shows once
    /// moved; for a fee's waiver, `/v1/fees/{fee_key}`; for a refund,
    /// `/v1/ledger?client_id={client_id}`.
    pub location: String,
    /// Why there is no final answer yet.
    pub message: String,
    /// The session as the read model has it now.
    pub session: Option<SessionSnapshot>,
}

impl StillRunning {
    /// The answer for `id`, whose workflow did not answer in time.
    pub fn new(id: SessionId, reason: String, session: Option<SessionSnapshot>) -> Self {
        Self { id: id.as_uuid(), location: format!("/v1/sessions/{id}"), message: reason, session }
    }

    /// The answer for a messaging session `id` whose workflow did not answer its start in time.
    pub fn messaging(id: SessionId, reason: String) -> Self {
        let location = format!("/v1/messaging-sessions/{id}");
        Self { id: id.as_uuid(), location, message: reason, session: None }
    }

    /// The answer for a waiver of the fee keyed `fee_key` that was not answered in time.
    pub fn waiver(id: WaiverId, fee_key: &str, reason: String) -> Self {
        let location = format!("/v1/fees/{fee_key}");
        Self { id: id.as_uuid(), location, message: reason, session: None }
    }

    /// The answer for a refund of `client`'s money the processor did not confirm: the refund's
    /// ledger entry shows under the client once it is made.
    pub fn refund(client: ClientId, reason: String) -> Self {
        let location = format!("/v1/ledger?client_id={client}");
        Self { id: client.as_uuid(), location, message: reason, session: None }
    }

    /// The answer for a credit purchase of `client` that did not finish in time.
    pub fn purchase(id: PurchaseId, client: ClientId, reason: String) -> Self {
        Self::credits(id.as_uuid(), client, reason)
    }

    /// The answer for an operator's credit adjustment `action` of `client`'s credits that did
    /// not finish in time.
    pub fn adjustment(action: ActionId, client: ClientId, reason: String) -> Self {
        Self::credits(action.as_uuid(), client, reason)
    }

    /// The answer for `id`, something that moves `client`'s credits: they show it once done.
    fn credits(id: uuid::Uuid, client: ClientId, reason: String) -> Self {
        let location = format!("/v1/clients/{client}/credits");
        Self { id, location, message: reason, session: None }
    }
}

impl std::fmt::Display for StillRunning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `psychiatry_requires_video`.
    pub code: String,
    /// For a person.
    pub message: String,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, String) {
        match self {
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_request".into()),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized".into()),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden".into()),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found".into()),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
            }
            ApiError::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
            }
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type".into())
            }
            ApiError::Refused(refusal) => {
                let status = match refusal.code.kind() {
                    RefusalKind::Conflict => StatusCode::CONFLICT,
                    RefusalKind::PaymentRequired => StatusCode::PAYMENT_REQUIRED,
                    RefusalKind::RuleBroken => StatusCode::UNPROCESSABLE_ENTITY,
                };
                (status, refusal.code.to_string())
            }
            ApiError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable".into())
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error".into()),
            ApiError::Pending(_) => (StatusCode::ACCEPTED, "still_running".into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Pending(answer) = self {
            let location = answer.location.clone();
            let mut response = (StatusCode::ACCEPTED, Json(*answer)).into_response();
            if let Ok(value) = axum::http::HeaderValue::from_str(&location) {
                response.headers_mut().insert(axum::http::header::LOCATION, value);
            }
            return response;
        }
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Refused(refusal) => refusal.message.clone(),
            ApiError::Internal(error) => {
                tracing::error!(error = %format!("{error:#}"), "request failed");
                "something went wrong on our side; it has been logged".into()
            }
            ApiError::Unavailable(reason) => {
                tracing::warn!(%reason, "dependency unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        (status, Json(ErrorBody { error: ErrorDetail { code, message } })).into_response()
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::Refused(refusal)
    }
}

impl From<ParseError> for ApiError {
    fn from(error: ParseError) -> Self {
        ApiError::Malformed(error.0)
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Sqlx(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
                ApiError::Unavailable(format!("the database did not answer: {error}"))
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<BillingError> for ApiError {
    fn from(error: BillingError) -> Self {
        match error {
            BillingError::Storage(storage) => storage.into(),
            BillingError::Processor(processor) => ApiError::Unavailable(processor.to_string()),
            BillingError::RefundUnconfirmed { client, .. } => {
                let reason = format!(
                    "{error}; repeat the request with the same Idempotency-Key for its outcome"
                );
                ApiError::Pending(Box::new(StillRunning::refund(client, reason)))
            }
        }
    }
}

impl From<SessionCallError> for ApiError {
    fn from(error: SessionCallError) -> Self {
        match error {
            SessionCallError::Refused(refusal) => ApiError::Refused(refusal),
            SessionCallError::NotRunning => ApiError::NotFound,
            SessionCallError::Unavailable(reason) => ApiError::Unavailable(reason),
            SessionCallError::Pending { session, reason } => {
                ApiError::Pending(Box::new(StillRunning::new(session, reason, None)))
            }
        }
    }
}

impl From<PurchaseCallError> for ApiError {
    fn from(error: PurchaseCallError) -> Self {
        match error {
            PurchaseCallError::Unavailable(reason) => ApiError::Unavailable(reason),
            PurchaseCallError::Pending { purchase, client, .. } => {
                let reason = format!(
                    "{error}: repeat the request with the same Idempotency-Key for its outcome"
                );
                ApiError::Pending(Box::new(StillRunning::purchase(purchase, client, reason)))
            }
        }
    }
}

impl From<SubscriptionStartError> for ApiError {
    fn from(error: SubscriptionStartError) -> Self {
        ApiError::Unavailable(format!(
            "{error}; the client is saved: repeat the same PUT to schedule them"
        ))
    }
}

impl ApiError {
    /// The answer of a waiver (`id`) of the fee keyed `fee_key` that got no `waived`.
    pub fn waiver(error: ActionCallError, id: WaiverId, fee_key: &str) -> Self {
        match error {
            ActionCallError::Refused(refusal) => ApiError::Refused(refusal),
            ActionCallError::Unavailable(reason) => ApiError::Unavailable(reason),
            ActionCallError::Ended => Refusal::new(
                RefusalCode::FeeNotOutstanding,
                "the fee's collection has ended: it is no longer owed",
            )
            .into(),
            ActionCallError::Pending(_) => {
                let reason = format!("{error}: GET the fee to see it");
                ApiError::Pending(Box::new(StillRunning::waiver(id, fee_key, reason)))
            }
        }
    }

    /// The answer of an operator's credit adjustment (`action`) of `client`'s credits that got
    /// no credit.
    pub fn adjustment(error: ActionCallError, action: ActionId, client: ClientId) -> Self {
        match error {
            ActionCallError::Refused(refusal) => ApiError::Refused(refusal),
            ActionCallError::Unavailable(reason) => ApiError::Unavailable(reason),
            ActionCallError::Ended => ApiError::Internal(anyhow::anyhow!(
                "credit adjustment {action} ended without an outcome"
            )),
            ActionCallError::Pending(_) => {
                let reason = format!(
                    "{error}: repeat the request with the same Idempotency-Key for its outcome"
                );
                ApiError::Pending(Box::new(StillRunning::adjustment(action, client, reason)))
            }
        }
    }

    /// A request axum's extractors could not read, answered in the error format with the status
    /// axum gives it: `413` and `415` keep theirs, any other client error is `400`, a server
    /// error (a route that names a parameter it lacks) is `500`.
    fn rejected(status: StatusCode, text: String) -> Self {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(text),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(text),
            status if status.is_server_error() => ApiError::Internal(anyhow::anyhow!(text)),
            _ => ApiError::Malformed(text),
        }
    }
}

/// `From` each of axum's rejections, through [`ApiError::rejected`].
macro_rules! from_rejections {
    ($($rejection:ty),+) => {$(
        impl From<$rejection> for ApiError {
            fn from(rejection: $rejection) -> Self {
                ApiError::rejected(rejection.status(), rejection.body_text())
            }
        }
    )+};
}

from_rejections!(BytesRejection, JsonRejection, PathRejection, QueryRejection);
