//! Errors of the store, grouped by what the caller should do, and [`classify`]: the one place
//! that tells what a ClickHouse client error means (the consumer and the query API act on it).

use clickhouse::error::Error as ChError;

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid; fix the configuration.
    #[error("invalid configuration: {0}")]
    Config(#[from] auditlog_settings::BadSetting),
    /// ClickHouse refused or could not be reached.
    #[error("clickhouse: {what}: {source}")]
    ClickHouse {
        /// What was being done.
        what: String,
        /// The client error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// A value is not acceptable (for example an unknown plan).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Wraps a ClickHouse client error with what was being done; a connection setting that
    /// cannot work (TLS handshake refused, unreadable file) becomes [`Error::Config`] naming it.
    pub fn clickhouse(what: impl Into<String>, source: clickhouse::error::Error) -> Self {
        if let Some(setup) = crate::tls::client_setup_error(&source, "ClickHouse") {
            return setup.into();
        }
        Self::ClickHouse {
            what: what.into(),
            source,
        }
    }
}

/// Result with the store's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a ClickHouse error says about the request that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// ClickHouse is unreachable, timed out, busy (too many parts or queries, memory limit)
    /// or going down (cancelling its queries): the same request can succeed later.
    Transient,
    /// ClickHouse (or the client, serializing a row) refused the data itself: parse, type,
    /// constraint and size errors. The same rows fail the same way every time.
    BadData,
    /// Anything else: a statement the server rejects (syntax, unknown table or column,
    /// permissions) or an answer the client did not expect. Retrying helps only once
    /// something was changed (an operator creating the table, a fix).
    Permanent,
}

/// ClickHouse error codes of a busy or stopping server (`src/Common/ErrorCodes.cpp`).
const TRANSIENT_CODES: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR (a shard or replica unreachable)
    225, // NO_ZOOKEEPER
    236, // ABORTED
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY (a replica without its ZooKeeper session)
    252, // TOO_MANY_PARTS
    279, // ALL_CONNECTION_TRIES_FAILED (every replica of a shard down)
    285, // TOO_FEW_LIVE_REPLICAS (insert_quorum not reachable now)
    286, // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
    319, // UNKNOWN_STATUS_OF_INSERT (retried with the same token: safe)
    394, // QUERY_WAS_CANCELLED
    999, // KEEPER_EXCEPTION (ZooKeeper / Keeper unreachable or session lost)
];

/// ClickHouse error codes meaning "this data is bad" (parsing, types, constraints, sizes).
const BAD_DATA_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    190, // SIZES_OF_ARRAYS_DONT_MATCH
    321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    376, // CANNOT_PARSE_UUID
    469, // VIOLATED_CONSTRAINT
];

/// Classifies a ClickHouse client error by its exception code (`Code: N.`, which the server
/// puts in the text and, when the body is unreadable, the client takes from the
/// `X-ClickHouse-Exception-Code` header). Network errors and client timeouts are transient;
/// a row the client could not serialize is bad data; an exception without a known code, and
/// every other client error, is permanent.
pub fn classify(e: &ChError) -> Class {
    match e {
        ChError::Network(_) | ChError::TimedOut => Class::Transient,
        ChError::BadResponse(text) => match exception_code(text) {
            Some(code) if TRANSIENT_CODES.contains(&code) => Class::Transient,
            Some(code) if BAD_DATA_CODES.contains(&code) => Class::BadData,
            _ => Class::Permanent,
        },
        ChError::Custom(_) | ChError::InvalidUtf8Encoding(_) | ChError::SequenceMustHaveLength => {
            Class::BadData
        }
        _ => Class::Permanent,
    }
}

/// The `Code: N.` of a ClickHouse exception text.
fn exception_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> ChError {
        ChError::BadResponse(text.into())
    }

    #[test]
    fn network_errors_and_timeouts_are_transient() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(classify(&ChError::Network(Box::new(io))), Class::Transient);
        assert_eq!(classify(&ChError::TimedOut), Class::Transient);
    }

    #[test]
    fn busy_and_stopping_servers_are_transient() {
        for text in [
            "Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)",
            "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)",
            "Code: 159. DB::Exception: Timeout exceeded: elapsed 5.1 seconds. (TIMEOUT_EXCEEDED)",
            "Code: 202. DB::Exception: Too many simultaneous queries. (TOO_MANY_SIMULTANEOUS_QUERIES)",
            "Code: 209. DB::NetException: Timeout exceeded while reading from socket. (SOCKET_TIMEOUT)",
            "Code: 236. DB::Exception: Cancelled merging parts. (ABORTED)",
            "Code: 242. DB::Exception: Table is in readonly mode. (TABLE_IS_READ_ONLY)",
            "Code: 394. DB::Exception: Query was cancelled. (QUERY_WAS_CANCELLED) (version 25.8.2.1)",
            // Only the code, from the response header (the body was unreadable).
            "Code: 241",
        ] {
            assert_eq!(classify(&bad(text)), Class::Transient, "{text}");
        }
    }

    #[test]
    fn refused_data_is_bad_data() {
        for text in [
            "Code: 469. DB::Exception: Constraint `c` for table events is violated. (VIOLATED_CONSTRAINT)",
            "Code: 27. DB::Exception: Cannot parse input. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
            "Code: 131. DB::Exception: Too large string size. (TOO_LARGE_STRING_SIZE)",
            "Code: 53. DB::Exception: Type mismatch. (TYPE_MISMATCH)",
        ] {
            assert_eq!(classify(&bad(text)), Class::BadData, "{text}");
        }
        assert_eq!(
            classify(&ChError::Custom("bad value".into())),
            Class::BadData
        );
        assert_eq!(classify(&ChError::SequenceMustHaveLength), Class::BadData);
    }

    #[test]
    fn schema_errors_bugs_and_unknown_answers_are_permanent() {
        for text in [
            "Code: 60. DB::Exception: Table db.events does not exist. (UNKNOWN_TABLE)",
            "Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR)",
            "Code: 47. DB::Exception: Unknown identifier: x. (UNKNOWN_IDENTIFIER)",
            "Code: 497. DB::Exception: default: Not enough privileges. (ACCESS_DENIED)",
            "Could not read columns header",
            "something without a code",
        ] {
            assert_eq!(classify(&bad(text)), Class::Permanent, "{text}");
        }
        assert_eq!(classify(&ChError::RowNotFound), Class::Permanent);
        assert_eq!(classify(&ChError::NotEnoughData), Class::Permanent);
    }

    #[test]
    fn exception_codes_parse() {
        assert_eq!(exception_code("Code: 60. DB::Exception"), Some(60));
        assert_eq!(exception_code("x Code: 469. y"), Some(469));
        assert_eq!(exception_code("Code: 241"), Some(241));
        assert_eq!(exception_code("Code: x"), None);
    }
}
