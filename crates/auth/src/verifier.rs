//! `verify_access_token`: the one JWT verification path, shared by the gateway and
//! `portico token verify`.

use crate::claims::{ClaimTimes, check_claims};
use crate::error::TokenError;
use crate::introspection::{Answer, Introspector};
use crate::jws::{CompactJws, Header};
use crate::keys::VerifyingKey;
use crate::keys::jwk::{JwksOrigin, key_set_from_jwks};
use crate::keys::{AlgSet, KeyError, KeyFingerprint, KeySet, pem};
use crate::sources::{JwksLocation, KeyLiveness, KeySource, KeySourceRegistry};
use portico_core::config::KeyFetchSettings;
use portico_core::jwt::{IssuerTrust, JwtSpec, KeySourceSpec};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A token whose signature and claims checked out, or that the issuer's introspection
/// endpoint vouched for.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The JWS header (`None`: an opaque token, introspected).
    pub header: Option<Header>,
    /// The JWT's claims, or the introspection answer's members.
    pub claims: Map<String, Value>,
    /// Index of the issuer entry that verified it.
    pub issuer_index: usize,
    /// `exp` in seconds since the epoch, when present.
    pub expires_at: Option<u64>,
    /// `iat` in seconds since the epoch, when present.
    pub issued_at: Option<u64>,
    /// Until when (seconds since the epoch) the token stays acceptable: `exp` plus its skew.
    pub valid_until: Option<u64>,
    /// For a key from a JWKS URL or discovery: whether that key is still published. Whoever
    /// remembers this token (the gateway's admission cache) must stop honouring it once
    /// [`KeyLiveness::is_live`] is false. `None` for configured keys, which never go away
    /// within a config version. Boxed to keep this struct small; unbox it to keep it.
    pub key: Option<Box<KeyLiveness>>,
}

#[derive(Debug)]
struct TrustedIssuer {
    trust: IssuerTrust,
    algorithms: AlgSet,
    keys: KeySource,
    introspector: Option<Arc<Introspector>>,
}

/// Verifies the JWTs of one API against its trusted issuers.
#[derive(Debug)]
pub struct JwtVerifier {
    issuers: Vec<TrustedIssuer>,
    max_token_bytes: usize,
}

impl JwtVerifier {
    /// Builds the verifier: static keys are parsed now (errors name the issuer entry), remote
    /// key sets come from `registry`.
    pub fn build(
        spec: &JwtSpec,
        registry: &KeySourceRegistry,
        fetch: &KeyFetchSettings,
    ) -> Result<Self, KeyError> {
        let issuers = spec
            .issuers
            .iter()
            .enumerate()
            .map(|(i, trust)| {
                let algorithms = trust
                    .algorithms
                    .as_deref()
                    .map_or(AlgSet::of(&portico_core::jwt::Algorithm::ALL), AlgSet::of);
                let keys = key_source(trust, algorithms, registry, fetch)
                    .map_err(|e| KeyError::new(format!("issuers[{i}]: {e}")))?;
                let introspector = trust
                    .introspection
                    .as_ref()
                    .map(|spec| registry.introspector(spec, trust.issuer.as_deref()))
                    .transpose()
                    .map_err(|e| KeyError::new(format!("issuers[{i}].introspection: {e}")))?;
                if matches!(keys, KeySource::None) && introspector.is_none() {
                    return Err(KeyError::new(format!(
                        "issuers[{i}]: no keys and no introspection: nothing can check its tokens"
                    )));
                }
                Ok(TrustedIssuer {
                    trust: trust.clone(),
                    algorithms,
                    keys,
                    introspector,
                })
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        Ok(Self {
            issuers,
            max_token_bytes: spec.max_token_bytes,
        })
    }

    /// The remote key sets this verifier uses (for start-up fetches and diagnostics).
    pub fn remote_key_sets(&self) -> impl Iterator<Item = &Arc<crate::sources::RemoteKeySet>> {
        self.issuers.iter().filter_map(|i| match &i.keys {
            KeySource::Remote(r) => Some(r),
            KeySource::Static(_) | KeySource::None => None,
        })
    }

    /// The introspectors this verifier uses (for diagnostics).
    pub fn introspectors(&self) -> impl Iterator<Item = &Arc<Introspector>> {
        self.issuers.iter().filter_map(|i| i.introspector.as_ref())
    }

    /// Verifies `token` at `now_secs` (seconds since the epoch).
    ///
    /// A JWT goes to the issuer entry its `iss` names, else to the entries without an issuer
    /// ([`Self::verify_unclaimed`]): verified with the entry's keys — and introspected as well
    /// under `LocalThenIntrospect` — or, for an entry without keys, introspected.
    /// Anything that is not a JWS is an opaque token: each entry with introspection is asked
    /// in order until one says active.
    pub async fn verify_access_token(
        &self,
        token: &str,
        now_secs: u64,
    ) -> Result<VerifiedToken, TokenError> {
        if token.len() > self.max_token_bytes {
            return Err(TokenError::TooLarge(self.max_token_bytes));
        }
        let jws = match CompactJws::parse(token) {
            Ok(jws) => jws,
            Err(not_a_jwt) => return self.verify_opaque(token, now_secs, not_a_jwt).await,
        };
        let claims = match serde_json::from_slice::<Value>(&jws.payload) {
            Ok(Value::Object(map)) => map,
            _ => return Err(TokenError::BadClaims),
        };
        let verified = match self.issuer_named(&claims) {
            Some(index) => self.verify_jwt(index, token, jws, claims, now_secs).await?,
            None => self.verify_unclaimed(token, jws, claims, now_secs).await?,
        };
        self.confirm_active(verified, token, now_secs).await
    }

    /// A JWT whose `iss` no entry names: tried against each entry trusted without an issuer
    /// that has keys, in order, until one verifies it; introspected by entries without keys
    /// only when no entry has keys (so that a JWT one key set does not know is not sent to
    /// another issuer's introspection endpoint).
    async fn verify_unclaimed(
        &self,
        token: &str,
        jws: CompactJws<'_>,
        claims: Map<String, Value>,
        now_secs: u64,
    ) -> Result<VerifiedToken, TokenError> {
        let keyed: Vec<usize> = self
            .issuerless()
            .filter(|&i| !matches!(self.issuers[i].keys, KeySource::None))
            .collect();
        let entries = if keyed.is_empty() {
            self.issuerless().collect()
        } else {
            keyed
        };
        let Some((&last, earlier)) = entries.split_last() else {
            return Err(TokenError::UntrustedIssuer);
        };
        let mut outcome = Err(TokenError::UntrustedIssuer);
        for &index in earlier {
            let tried = self
                .verify_jwt(index, token, jws.clone(), claims.clone(), now_secs)
                .await;
            match tried {
                Ok(verified) => return Ok(verified),
                // Its key signed it, but its claims fail: no other entry's concern.
                Err(e) if !e.is_not_this_issuers() => return Err(e),
                Err(e) => merge_failure(&mut outcome, e),
            }
        }
        // The last one takes the token itself, without a copy.
        match self.verify_jwt(last, token, jws, claims, now_secs).await {
            Ok(verified) => Ok(verified),
            Err(e) if !e.is_not_this_issuers() || earlier.is_empty() => Err(e),
            Err(e) => {
                merge_failure(&mut outcome, e);
                outcome
            }
        }
    }

    /// Under `LocalThenIntrospect`, a JWT its entry's keys verified must also be active at the
    /// issuer. Final whatever the answer: the entry's key signed it, so no other entry is
    /// asked (an inactive or uncheckable token is not passed on to be admitted elsewhere).
    async fn confirm_active(
        &self,
        mut verified: VerifiedToken,
        token: &str,
        now_secs: u64,
    ) -> Result<VerifiedToken, TokenError> {
        let issuer = &self.issuers[verified.issuer_index];
        let also_introspect = !matches!(issuer.keys, KeySource::None)
            && issuer.trust.introspection.as_ref().is_some_and(|i| {
                i.jwt_validation == portico_core::introspection::JwtValidation::LocalThenIntrospect
            });
        if also_introspect {
            // The signed claims stay the truth; the issuer only has to still call it active.
            let vouched = self
                .introspected(verified.issuer_index, token, now_secs)
                .await?;
            verified.valid_until = Some(min_some(verified.valid_until, vouched.valid_until));
        }
        Ok(verified)
    }

    /// `jws` checked by the entry `index`: with its keys, or, for an entry without keys,
    /// introspected (`LocalThenIntrospect` is [`Self::confirm_active`]'s).
    async fn verify_jwt(
        &self,
        issuer_index: usize,
        token: &str,
        jws: CompactJws<'_>,
        claims: Map<String, Value>,
        now_secs: u64,
    ) -> Result<VerifiedToken, TokenError> {
        let issuer = &self.issuers[issuer_index];
        if matches!(issuer.keys, KeySource::None) {
            return self.introspected(issuer_index, token, now_secs).await;
        }
        check_type(&jws.header, issuer.trust.require_at_jwt)?;
        if !issuer.algorithms.contains(jws.algorithm) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let kid = jws.header.kid.as_deref();
        let key = match &issuer.keys {
            KeySource::Static(keys) => {
                verify_with(keys, &jws, kid)?;
                None
            }
            KeySource::Remote(remote) => {
                let (mut generation, keys) = remote.snapshot();
                let mut verified = verify_with(&keys, &jws, kid);
                drop(keys);
                if let Err(TokenError::UnknownKey | TokenError::KeysUnavailable) = verified {
                    // Rare: boxed, to keep its future out of every request's.
                    Box::pin(remote.refetch_for_unknown_kid()).await;
                    let (refetched, keys) = remote.snapshot();
                    generation = refetched;
                    verified = verify_with(&keys, &jws, kid);
                }
                let fingerprint = verified?;
                Some(Box::new(KeyLiveness::new(
                    remote.clone(),
                    generation,
                    kid,
                    jws.algorithm,
                    fingerprint,
                )))
            }
            KeySource::None => unreachable!("introspected above"),
        };
        let ClaimTimes {
            expires_at,
            issued_at,
        } = check_claims(&claims, &issuer.trust, now_secs)?;
        let valid_until = expires_at.map(|exp| exp.saturating_add(issuer.trust.skew.exp_secs));
        Ok(VerifiedToken {
            header: Some(jws.header),
            claims,
            issuer_index,
            expires_at,
            issued_at,
            valid_until,
            key,
        })
    }

    /// An opaque token: asked of each entry with introspection, in order, until one says
    /// active. When none does, `Uncheckable` if any could not answer, else `Inactive`; an API
    /// without introspection refuses it as the malformed JWT it then is.
    async fn verify_opaque(
        &self,
        token: &str,
        now_secs: u64,
        not_a_jwt: TokenError,
    ) -> Result<VerifiedToken, TokenError> {
        let mut outcome = Err(not_a_jwt);
        for (index, issuer) in self.issuers.iter().enumerate() {
            if issuer.introspector.is_none() {
                continue;
            }
            match self.introspected(index, token, now_secs).await {
                Ok(verified) => return Ok(verified),
                Err(e) => merge_failure(&mut outcome, e),
            }
        }
        outcome
    }

    /// `token` introspected at the entry `index`, its answer checked like a JWT's claims: the
    /// answer's `iss`, when present, must be the entry's issuer; `exp`, `nbf`, `iat` and `aud`
    /// as configured.
    async fn introspected(
        &self,
        index: usize,
        token: &str,
        now_secs: u64,
    ) -> Result<VerifiedToken, TokenError> {
        let issuer = &self.issuers[index];
        let Some(introspector) = &issuer.introspector else {
            return Err(TokenError::UntrustedIssuer);
        };
        let answered = introspector
            .introspect(token, now_secs)
            .await
            .map_err(|_| TokenError::Uncheckable)?;
        let claims = match answered.answer {
            Answer::Active(claims) => claims,
            Answer::Inactive => return Err(TokenError::Inactive),
        };
        if let (Some(expected), Some(iss)) = (
            issuer.trust.issuer.as_deref(),
            claims.get("iss").and_then(Value::as_str),
        ) && iss != expected
        {
            return Err(TokenError::UntrustedIssuer);
        }
        let claims = (*claims).clone();
        let ClaimTimes {
            expires_at,
            issued_at,
        } = check_claims(&claims, &issuer.trust, now_secs)?;
        let valid_until = min_some(
            expires_at.map(|exp| exp.saturating_add(issuer.trust.skew.exp_secs)),
            Some(answered.reusable_until),
        );
        Ok(VerifiedToken {
            header: None,
            claims,
            issuer_index: index,
            expires_at,
            issued_at,
            valid_until: Some(valid_until),
            key: None,
        })
    }

    /// The entry whose `issuer` equals the token's `iss` exactly.
    fn issuer_named(&self, claims: &Map<String, Value>) -> Option<usize> {
        let iss = claims.get("iss").and_then(Value::as_str)?;
        self.issuers
            .iter()
            .position(|i| i.trust.issuer.as_deref() == Some(iss))
    }

    /// The entries trusted without an issuer, in order.
    fn issuerless(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.issuers.len()).filter(|&i| self.issuers[i].trust.issuer.is_none())
    }
}

/// Of several entries' failures, the one to report: `Uncheckable` when any entry could not
/// answer (the token may be good; the caller is asked to retry), else the first.
fn merge_failure(outcome: &mut Result<VerifiedToken, TokenError>, failure: TokenError) {
    match outcome {
        Err(TokenError::Uncheckable) => {}
        _ if failure == TokenError::Uncheckable => *outcome = Err(failure),
        Err(TokenError::UntrustedIssuer) | Err(TokenError::Malformed(_)) => *outcome = Err(failure),
        _ => {}
    }
}

/// The earlier of two moments, where `None` is "no limit".
fn min_some(a: Option<u64>, b: Option<u64>) -> u64 {
    a.unwrap_or(u64::MAX).min(b.unwrap_or(u64::MAX))
}

/// Verifies the signature with the key `keys` selects; returns that key's fingerprint.
fn verify_with(
    keys: &KeySet,
    jws: &CompactJws<'_>,
    kid: Option<&str>,
) -> Result<KeyFingerprint, TokenError> {
    let key = keys.select(kid, jws.algorithm)?;
    if key.verify(jws.algorithm, jws.signing_input.as_bytes(), &jws.signature) {
        Ok(*key.fingerprint())
    } else {
        Err(TokenError::BadSignature)
    }
}

/// RFC 9068 §2.1 `at+jwt` (media types compare case-insensitively, `application/` optional);
/// `JWT` or no `typ` are accepted unless `at+jwt` is required.
fn check_type(header: &Header, require_at_jwt: bool) -> Result<(), TokenError> {
    let typ = header.typ.as_deref().map(|t| {
        let lower = t.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_string)
            .unwrap_or(lower)
    });
    let ok = match typ.as_deref() {
        Some("at+jwt") => true,
        Some("jwt") | None => !require_at_jwt,
        Some(_) => false,
    };
    if ok { Ok(()) } else { Err(TokenError::BadType) }
}

fn key_source(
    trust: &IssuerTrust,
    algorithms: AlgSet,
    registry: &KeySourceRegistry,
    fetch: &KeyFetchSettings,
) -> Result<KeySource, KeyError> {
    let static_set = |keys: Vec<VerifyingKey>| KeySource::Static(Arc::new(KeySet::new(keys)));
    match &trust.keys {
        KeySourceSpec::Secret(secret) => Ok(static_set(vec![VerifyingKey::hmac(
            None,
            secret.expose(),
            Some(algorithms),
        )?])),
        KeySourceSpec::PublicKeyPem(text) => Ok(static_set(vec![pem::key_from_pem(
            None,
            text,
            Some(algorithms),
        )?])),
        KeySourceSpec::JwksDocument(doc) => {
            let (keys, notes) = key_set_from_jwks(doc.as_bytes(), JwksOrigin::Local)?;
            for note in notes {
                tracing::warn!("JWKS: {note}");
            }
            if keys.is_empty() {
                return Err(KeyError::new("the JWKS has no usable signature keys"));
            }
            Ok(KeySource::Static(Arc::new(keys)))
        }
        KeySourceSpec::JwksUrl(url) => Ok(KeySource::Remote(
            registry
                .remote(JwksLocation::Url(url.clone()), fetch)
                .map_err(KeyError::new)?,
        )),
        KeySourceSpec::None => Ok(KeySource::None),
        KeySourceSpec::Discovery => {
            let issuer = trust
                .issuer
                .clone()
                .ok_or_else(|| KeyError::new("OIDC discovery needs the issuer URL"))?;
            Ok(KeySource::Remote(
                registry
                    .remote(JwksLocation::Discovery { issuer }, fetch)
                    .map_err(KeyError::new)?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SigningKey;
    use portico_core::HttpUrl;
    use portico_core::introspection::{
        ClientAuth, IntrospectionCache, IntrospectionSpec, JwtValidation,
    };
    use portico_core::jwt::{Algorithm, Secret};
    use serde_json::json;

    const NOW: u64 = 1_000_000;

    fn secret(byte: u8) -> Vec<u8> {
        vec![byte; 32]
    }

    fn keyed(byte: u8) -> IssuerTrust {
        let mut trust = IssuerTrust::new(None, KeySourceSpec::Secret(Secret::new(secret(byte))));
        trust.algorithms = Some(vec![Algorithm::HS256]);
        trust
    }

    /// Introspection at an endpoint nobody listens on: asking it is `Uncheckable`.
    fn unreachable_introspection(validation: JwtValidation) -> IntrospectionSpec {
        IntrospectionSpec {
            endpoint: Some(HttpUrl::try_new("http://127.0.0.1:1/introspect").unwrap()),
            client_id: "gateway".into(),
            client_auth: ClientAuth::ClientSecretBasic(Secret::new(b"s".to_vec())),
            cache: IntrospectionCache::default(),
            timeout_ms: 500,
            grace_secs: 0,
            jwt_validation: validation,
        }
    }

    fn verifier(issuers: Vec<IssuerTrust>) -> JwtVerifier {
        let spec = JwtSpec {
            issuers,
            max_token_bytes: portico_core::jwt::DEFAULT_MAX_TOKEN_BYTES,
        };
        JwtVerifier::build(
            &spec,
            &KeySourceRegistry::on_demand(),
            &KeyFetchSettings::default(),
        )
        .unwrap()
    }

    fn token(byte: u8, exp: u64) -> String {
        let claims = json!({"sub": "alice", "exp": exp});
        SigningKey::from_secret(Algorithm::HS256, &secret(byte))
            .unwrap()
            .sign_jwt(claims.as_object().unwrap(), &Map::new())
            .unwrap()
    }

    #[tokio::test]
    async fn entries_without_an_issuer_are_tried_in_order_until_one_verifies() {
        let v = verifier(vec![keyed(1), keyed(2)]);
        let first = v
            .verify_access_token(&token(1, NOW + 60), NOW)
            .await
            .unwrap();
        assert_eq!(first.issuer_index, 0);
        let second = v
            .verify_access_token(&token(2, NOW + 60), NOW)
            .await
            .unwrap();
        assert_eq!(second.issuer_index, 1);
        assert_eq!(
            v.verify_access_token(&token(3, NOW + 60), NOW)
                .await
                .unwrap_err(),
            TokenError::BadSignature
        );
        // Signed by the first entry's key: its claims are final, the second is not asked.
        assert_eq!(
            v.verify_access_token(&token(1, NOW - 60), NOW)
                .await
                .unwrap_err(),
            TokenError::Expired
        );
    }

    #[tokio::test]
    async fn a_jwt_no_key_knows_is_not_sent_to_another_entrys_introspection() {
        let mut introspecting = IssuerTrust::new(None, KeySourceSpec::None);
        introspecting.introspection = Some(unreachable_introspection(JwtValidation::Local));
        let v = verifier(vec![keyed(1), introspecting]);
        // Had it been sent, the unreachable endpoint would make it `Uncheckable`.
        assert_eq!(
            v.verify_access_token(&token(3, NOW + 60), NOW)
                .await
                .unwrap_err(),
            TokenError::BadSignature
        );
        // Opaque tokens still go to the introspecting entry.
        assert_eq!(
            v.verify_access_token("opaque-token", NOW)
                .await
                .unwrap_err(),
            TokenError::Uncheckable
        );
    }

    #[tokio::test]
    async fn a_verified_jwt_the_issuer_cannot_confirm_is_not_admitted_by_a_later_entry() {
        let mut sensitive = keyed(1);
        sensitive.introspection = Some(unreachable_introspection(
            JwtValidation::LocalThenIntrospect,
        ));
        let v = verifier(vec![sensitive, keyed(1)]);
        assert_eq!(
            v.verify_access_token(&token(1, NOW + 60), NOW)
                .await
                .unwrap_err(),
            TokenError::Uncheckable,
            "503, not a pass by the second entry"
        );
    }

    #[test]
    fn of_several_failures_uncheckable_wins_else_the_first() {
        let mut outcome = Err(TokenError::UntrustedIssuer);
        merge_failure(&mut outcome, TokenError::BadSignature);
        merge_failure(&mut outcome, TokenError::Inactive);
        assert_eq!(outcome.as_ref().unwrap_err(), &TokenError::BadSignature);
        merge_failure(&mut outcome, TokenError::Uncheckable);
        merge_failure(&mut outcome, TokenError::Inactive);
        assert_eq!(outcome.unwrap_err(), TokenError::Uncheckable);
    }
}
