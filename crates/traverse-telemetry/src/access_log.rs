//! placeholder: access_log
