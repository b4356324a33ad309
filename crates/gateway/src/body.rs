//! The response body type: a streamed upstream body or a small body of our own.

use crate::proxy::UpstreamBody;
use bytes::Bytes;
use http_body_util::{Either, Full};

pub type GatewayBody = Either<UpstreamBody, Full<Bytes>>;

pub trait FullBody {
    fn full(content: impl Into<Bytes>) -> Self;
}

impl FullBody for GatewayBody {
    fn full(content: impl Into<Bytes>) -> Self {
        Either::Right(Full::new(content.into()))
    }
}
