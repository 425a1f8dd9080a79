//! The text of a bench message: `bench <send time in µs> <user index>`, so a reader can
//! compute latency without a shared map; a command is the same text after `/echo `, and the
//! echo app's reply is the text again (so a reply names whose command it answers).

use std::io::Write as _;

/// The command prefix of an app-command run: the echo app repeats what follows it.
pub const COMMAND: &str = "/echo ";

/// Writes the JSON body of a send into `out` (cleared first); `command` prefixes the text.
pub fn write_body(out: &mut Vec<u8>, sent_us: u64, user: usize, command: bool) {
    out.clear();
    let prefix = if command { COMMAND } else { "" };
    let _ = write!(
        out,
        r#"{{"content":{{"type":"text","text":"{prefix}bench {sent_us} {user}"}}}}"#
    );
}

/// What a bench text carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// When it was sent, in µs on the run's clock.
    pub sent_us: u64,
    /// The index of the user who sent it (or whose command it answers).
    pub user: usize,
    /// It is a command (not a plain message or an app's reply).
    pub command: bool,
}

/// Reads a bench text; `None` for anything else.
pub fn stamp(text: &str) -> Option<Stamp> {
    let (command, text) = match text.strip_prefix(COMMAND) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut parts = text.strip_prefix("bench ")?.split(' ');
    let sent_us = parts.next()?.parse().ok()?;
    let user = parts.next()?.parse().ok()?;
    Some(Stamp {
        sent_us,
        user,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(body: &[u8]) -> String {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["content"]["type"], "text");
        v["content"]["text"].as_str().unwrap().to_owned()
    }

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        write_body(&mut out, 123456, 7, false);
        let s = stamp(&text_of(&out)).unwrap();
        assert_eq!((s.sent_us, s.user, s.command), (123456, 7, false));
        write_body(&mut out, 9, 3, true);
        let text = text_of(&out);
        assert!(text.starts_with("/echo "));
        assert_eq!(
            stamp(&text),
            Some(Stamp {
                sent_us: 9,
                user: 3,
                command: true
            })
        );
        assert_eq!(stamp("hello"), None);
        assert_eq!(stamp("bench 12"), None);
    }
}
