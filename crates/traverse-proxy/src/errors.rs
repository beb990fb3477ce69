//! The one place where proxy errors become HTTP status codes.

use pingora::{Error, ErrorSource, ErrorType};

/// Status recorded when the client went away before a response was sent (nginx's convention).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The status a failed request answers (or records, when the client is gone).
///
/// Upstream connect failures are 502, upstream timeouts 504, a client that disconnected 499,
/// a malformed request 400, anything else of ours 500.
pub fn status_for_error(error: &Error) -> u16 {
    use ErrorType::*;
    match (error.esource(), error.etype()) {
        (_, HTTPStatus(code)) | (_, CustomCode(_, code)) => *code,
        (ErrorSource::Upstream, ReadTimedout | WriteTimedout) => 504,
        (ErrorSource::Upstream, ConnectTimedout) => 502,
        (ErrorSource::Upstream, _) => 502,
        (ErrorSource::Downstream, ReadError | WriteError | ConnectionClosed) => {
            CLIENT_CLOSED_REQUEST
        }
        (ErrorSource::Downstream, ReadTimedout | WriteTimedout) => 408,
        (ErrorSource::Downstream, _) => 400,
        (ErrorSource::Internal | ErrorSource::Unset, _) => match error.etype() {
            ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError
            | TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert | HandshakeError => 502,
            _ => 500,
        },
    }
}

/// Whether `error` is the client's doing (it closed the connection, or reading from or
/// writing to it failed): never an upstream failure, never retried.
pub(crate) fn client_gone(error: &Error) -> bool {
    *error.esource() == ErrorSource::Downstream && status_for_error(error) == CLIENT_CLOSED_REQUEST
}

/// The status the request ended with: what was sent, or what the error maps to.
/// A client that disconnected before any response is 499.
pub(crate) fn final_status(written: Option<u16>, error: Option<&Error>) -> u16 {
    match (written, error) {
        (Some(status), _) => status,
        (None, Some(error)) => status_for_error(error),
        (None, None) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_table() {
        use ErrorType::*;
        let cases = [
            (ErrorSource::Upstream, ConnectRefused, 502),
            (ErrorSource::Upstream, ConnectTimedout, 502),
            (ErrorSource::Upstream, ReadTimedout, 504),
            (ErrorSource::Upstream, WriteTimedout, 504),
            (ErrorSource::Upstream, ConnectionClosed, 502),
            (ErrorSource::Upstream, InvalidHTTPHeader, 502),
            (ErrorSource::Downstream, ConnectionClosed, 499),
            (ErrorSource::Downstream, ReadError, 499),
            (ErrorSource::Downstream, ReadTimedout, 408),
            (ErrorSource::Downstream, InvalidHTTPHeader, 400),
            (ErrorSource::Internal, InternalError, 500),
            (ErrorSource::Unset, ConnectRefused, 502),
            (ErrorSource::Internal, HTTPStatus(503), 503),
        ];
        for (source, etype, expected) in cases {
            let error = Error::create(etype.clone(), source.clone(), None, None);
            assert_eq!(status_for_error(&error), expected, "{source:?} {etype:?}");
        }
    }

    #[test]
    fn final_status_prefers_what_was_sent() {
        let gone = Error::create(
            ErrorType::ConnectionClosed,
            ErrorSource::Downstream,
            None,
            None,
        );
        assert_eq!(final_status(None, Some(&gone)), 499);
        assert_eq!(final_status(Some(200), Some(&gone)), 200);
        let timeout = Error::create(ErrorType::ReadTimedout, ErrorSource::Upstream, None, None);
        assert_eq!(final_status(None, Some(&timeout)), 504);
        assert_eq!(final_status(Some(404), None), 404);
    }
}
