//! placeholder: log_bridge
