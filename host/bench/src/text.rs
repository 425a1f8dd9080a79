//! The text of a bench message: `bench <send time in µs> <sender index>`, so a reader can
//! compute latency without a shared map.

use std::io::Write as _;

/// Writes the JSON body of a send into `out` (cleared first).
pub fn write_body(out: &mut Vec<u8>, sent_us: u64, sender: usize) {
    out.clear();
    let _ = write!(
        out,
        r#"{{"content":{{"type":"text","text":"bench {sent_us} {sender}"}}}}"#
    );
}

/// The send time carried by a bench message's text.
pub fn sent_at(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("bench ")?;
    rest.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        write_body(&mut out, 123456, 7);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let text = v["content"]["text"].as_str().unwrap();
        assert_eq!(v["content"]["type"], "text");
        assert_eq!(sent_at(text), Some(123456));
        assert_eq!(sent_at("hello"), None);
    }
}
