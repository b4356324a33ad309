//! Why a token was rejected. Each reason has a stable short code (for metrics and
//! `portico token verify`) and a description safe to show the caller: no keys, no token.

/// A rejected access token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token's algorithm is not supported")]
    UnsupportedAlgorithm,
    #[error("the token's algorithm is not allowed for this issuer or key")]
    AlgorithmNotAllowed,
    #[error("the token has a critical header extension Portico does not understand")]
    UnsupportedCritical,
    #[error("the token's typ header is not accepted")]
    BadType,
    #[error("the token's issuer is not trusted")]
    UntrustedIssuer,
    #[error("no key matches the token's kid")]
    UnknownKey,
    #[error("the token has no kid and several keys could verify it")]
    AmbiguousKey,
    #[error("the issuer's keys are not available")]
    KeysUnavailable,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token's claims are not a JSON object")]
    BadClaims,
    #[error("the token has no exp claim")]
    MissingExpiry,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// The issuer's introspection endpoint says `active: false` (revoked, expired, unknown).
    #[error("the token is not active")]
    Inactive,
    /// Refused by a revocation at the gateway (by its `client_id`, `jti` or identity).
    #[error("the token has been revoked")]
    Revoked,
    /// The token cannot be checked now: the introspection endpoint failed (unreachable, slow,
    /// an error, an answer that is not RFC 7662). Not the caller's fault; the reason is
    /// logged, never shown to the caller. The gateway answers 503 with `Retry-After`.
    #[error("the token cannot be checked right now")]
    Uncheckable,
}

impl TokenError {
    /// Says only that this issuer entry does not vouch for the token (not its key, not its
    /// algorithm, not active there, cannot answer): another entry may. The others — claims
    /// that fail under a signature that checked — are final.
    pub fn is_not_this_issuers(&self) -> bool {
        matches!(
            self,
            Self::UntrustedIssuer
                | Self::UnknownKey
                | Self::AmbiguousKey
                | Self::KeysUnavailable
                | Self::BadSignature
                | Self::AlgorithmNotAllowed
                | Self::BadType
                | Self::Inactive
                | Self::Uncheckable
        )
    }

    /// A stable, low-cardinality code: a metrics label and the `reason` of `token verify`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "too_large",
            Self::Malformed(_) => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::UnsupportedCritical => "unsupported_crit",
            Self::BadType => "bad_typ",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::UnknownKey => "unknown_kid",
            Self::AmbiguousKey => "ambiguous_key",
            Self::KeysUnavailable => "keys_unavailable",
            Self::BadSignature => "bad_signature",
            Self::BadClaims => "bad_claims",
            Self::MissingExpiry => "missing_exp",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::WrongAudience => "wrong_audience",
            Self::Inactive => "inactive",
            Self::Revoked => "revoked",
            Self::Uncheckable => "introspection_unavailable",
        }
    }
}
