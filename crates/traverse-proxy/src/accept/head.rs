//! Where a request head ends, and which responses are interim, seen in raw bytes.

/// Finds the blank line that ends a request head, across reads. A line may end in CRLF or
/// a bare LF, as Pingora's parser accepts both.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct HeadEnd {
    /// 0: inside a line; 1: just after a LF; 2: after a LF and a CR.
    state: u8,
}

impl HeadEnd {
    /// Reads `bytes` on from where the last call stopped; true once the head has ended.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> bool {
        for &byte in bytes {
            self.state = match (self.state, byte) {
                (1 | 2, b'\n') => return true,
                (_, b'\n') => 1,
                (1, b'\r') => 2,
                _ => 0,
            };
        }
        false
    }
}

/// Whether `bytes` begin an HTTP/1 interim (1xx) response, which leaves the request open.
pub(super) fn is_interim_response(bytes: &[u8]) -> bool {
    bytes.len() > 9 && bytes.starts_with(b"HTTP/1.") && bytes[9] == b'1'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(chunks: &[&[u8]]) -> Option<usize> {
        let mut head = HeadEnd::default();
        chunks.iter().position(|chunk| head.feed(chunk))
    }

    #[test]
    fn a_head_ends_at_its_blank_line_in_any_split() {
        let head: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(ends(&[head]), Some(0));
        for cut in 1..head.len() {
            assert_eq!(ends(&[&head[..cut], &head[cut..]]), Some(1), "cut at {cut}");
        }
        assert_eq!(ends(&[b"GET / HTTP/1.1\nHost: a\n\n"]), Some(0));
    }

    #[test]
    fn an_unfinished_head_has_not_ended() {
        assert_eq!(
            ends(&[b"GET / HTTP/1.1\r\n", b"Host: a\r\n", b"X: \r"]),
            None
        );
        assert_eq!(ends(&[b"GET / HTTP/1.1\r\nA: b\r\r\n"]), None);
    }

    #[test]
    fn only_1xx_responses_are_interim() {
        assert!(is_interim_response(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(is_interim_response(b"HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(!is_interim_response(b"HTTP/1.1 200 OK\r\n"));
        assert!(!is_interim_response(b"\x00\x00\x12\x04"));
    }
}
