//! The prologue of the filtered reads (list, counts, export) as one axum extractor,
//! [`Filtered`]: the token's workspace, the query string decoded strictly, unknown parameters
//! refused, then the endpoint's parameters parsed in the endpoint's own order
//! ([`ReadQuery::parse`]). The first failing step answers, so the errors and their order are
//! the same for every filtered read.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::{auth, AppState};
use crate::filter::FILTER_PARAMS;
use crate::params::Params;
use crate::{Error, Result};

/// The parameters of one filtered read, parsed after the filter's names were checked.
pub trait ReadQuery: Sized {
    /// Parameters accepted besides [`FILTER_PARAMS`], in the order the error message lists
    /// them.
    const EXTRA: &'static [&'static str];

    /// Parses the parameters (the filter's among them).
    fn parse(p: &Params) -> Result<Self>;

    /// Every parameter accepted: [`FILTER_PARAMS`] then [`Self::EXTRA`].
    fn accepted() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = FILTER_PARAMS.to_vec();
        v.extend_from_slice(Self::EXTRA);
        v
    }
}

/// A filtered read's request: its workspace and its parsed parameters.
#[derive(Debug)]
pub struct Filtered<Q> {
    /// The workspace the token reads.
    pub workspace: String,
    /// The decoded query string.
    pub params: Params,
    /// The parsed parameters.
    pub query: Q,
}

impl<Q: ReadQuery> FromRequestParts<Arc<AppState>> for Filtered<Q> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<AppState>) -> Result<Self> {
        let workspace = auth::workspace(s, &parts.headers).await?;
        let params = Params::parse(parts.uri.query())?;
        params.only(&Q::accepted())?;
        let query = Q::parse(&params)?;
        Ok(Self {
            workspace,
            params,
            query,
        })
    }
}
