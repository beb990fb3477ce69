use pingora::{Error, ErrorSource, ErrorType};

use super::*;

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
