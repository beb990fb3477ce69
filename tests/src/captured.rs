//! What a helper process (the collector, the API-server emulator) writes, captured whole
//! lines at a time while it runs, and the tail of it that a failure message shows.

use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Captured text, shared between the reading threads and the test.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<String>>);

impl Captured {
    fn lock(&self) -> MutexGuard<'_, String> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Copies `pipe` here, whole lines at a time, on its own thread until end of stream.
    pub fn read_from(&self, mut pipe: impl Read + Send + 'static) -> JoinHandle<()> {
        let captured = self.clone();
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&buf[..n]);
                if let Some(last) = pending.iter().rposition(|&b| b == b'\n') {
                    let rest = pending.split_off(last + 1);
                    captured.lock().push_str(&String::from_utf8_lossy(&pending));
                    pending = rest;
                }
            }
            if !pending.is_empty() {
                let mut text = captured.lock();
                text.push_str(&String::from_utf8_lossy(&pending));
                text.push('\n');
            }
        })
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.lock().clone()
    }

    /// How many bytes were captured so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was captured yet.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Whether a captured line satisfies `predicate`.
    pub fn any_line(&self, predicate: impl Fn(&str) -> bool) -> bool {
        self.lock().lines().any(predicate)
    }
}

/// The last `shown` lines of `text`, saying how many earlier ones were left out.
pub fn tail(text: &str, shown: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(shown);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("({skip} earlier lines left out)\n"));
    }
    out.push_str(&lines[skip..].join("\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_are_captured_and_a_last_partial_line_is_ended() {
        let captured = Captured::default();
        captured
            .read_from(std::io::Cursor::new(b"one\ntwo\nthree".to_vec()))
            .join()
            .expect("reader");
        assert_eq!(captured.text(), "one\ntwo\nthree\n");
        assert!(captured.any_line(|l| l == "two"));
        assert_eq!(
            tail(&captured.text(), 2),
            "(1 earlier lines left out)\ntwo\nthree"
        );
        assert_eq!(tail("a\nb", 5), "a\nb");
    }
}
