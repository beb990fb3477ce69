//! placeholder: metrics
