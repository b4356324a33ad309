//! Reading JSON request bodies: bounded ([`crate::MAX_BODY_BYTES`], 413 beyond), and a body
//! of the wrong shape is refused with the path of the field at fault (`metadata.name`,
//! `[2].spec`), not just a line and column.

use crate::error::{ApiError, FieldError};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// A JSON body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(&request) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::invalid("the body could not be read", Vec::new())
                }
            })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// `application/json`, or any `application/*+json`, with or without parameters.
fn is_json(request: &Request) -> bool {
    let Some(value) = request.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as a `T`; a value of the wrong type or shape names its path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return invalid_json(&inner);
        }
        let path = if path == "." { String::new() } else { path };
        ApiError::invalid(
            format!("invalid document: {}: {inner}", display_path(&path)),
            vec![FieldError::new(path, inner.to_string())],
        )
    })?;
    deserializer.end().map_err(|e| invalid_json(&e))?;
    Ok(value)
}

fn invalid_json(e: &serde_json::Error) -> ApiError {
    ApiError::invalid(format!("invalid JSON: {e}"), Vec::new())
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "(the body)" } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Document;

    fn fields_of(e: ApiError) -> Vec<FieldError> {
        match e {
            ApiError::Invalid { fields, .. } => fields,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn a_wrong_type_names_its_path() {
        let e = parse_json::<Document>(br#"{"kind":"Api","metadata":{"name":3},"spec":{}}"#)
            .unwrap_err();
        let fields = fields_of(e);
        assert_eq!(fields[0].path, "metadata.name");
        assert!(fields[0].reason.contains("expected a string"), "{fields:?}");

        let e = parse_json::<Vec<Document>>(
            br#"[{"kind":"Api","metadata":{"name":"a"},"spec":{}}, {"kind":1}]"#,
        )
        .unwrap_err();
        assert_eq!(fields_of(e)[0].path, "[1].kind");
    }

    #[test]
    fn broken_json_and_trailing_bytes_are_refused() {
        assert!(fields_of(parse_json::<Document>(b"{\"kind\":").unwrap_err()).is_empty());
        let doc = br#"{"kind":"Api","metadata":{"name":"a"},"spec":{}} {}"#;
        assert!(parse_json::<Document>(doc).is_err());
    }
}
