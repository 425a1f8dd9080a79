//! What a user reads when an app's invocation fails: one plain sentence per outcome, naming the
//! app. The typed detail (error variant, fault, limit) stays in the developer's invocation log.

use minihost_core::Scope;
use minihost_runtime::{Error, ErrorKind};

/// What the user is told when the invocation of `app` ended with `kind` (`None`: the run went
/// fine but its reply could not be posted).
pub(super) fn user_notice(app: &str, kind: Option<&ErrorKind>) -> String {
    match kind {
        None => format!("{app} sent a reply that could not be shown. Its developer has been told."),
        Some(ErrorKind::App(error)) => app_error(app, error),
        Some(ErrorKind::Timeout) => {
            format!("{app} took too long to answer. Its developer has been told.")
        }
        Some(ErrorKind::Busy) => {
            format!("{app} is busy right now. Please try again in a moment.")
        }
        Some(ErrorKind::TooManyCalls) | Some(ErrorKind::FuelExhausted) => {
            format!("{app} did too much work to answer. Its developer has been told.")
        }
        Some(
            ErrorKind::MemoryLimit
            | ErrorKind::ResourceLimit
            | ErrorKind::StackOverflow
            | ErrorKind::Trap
            | ErrorKind::OutputTooLarge
            | ErrorKind::DataLimit
            | ErrorKind::Link,
        ) => format!("{app} stopped unexpectedly. Its developer has been told."),
        Some(ErrorKind::Internal) => {
            format!("{app} could not run because of a problem on our side. Please try again.")
        }
    }
}

/// An error the app returned on purpose.
fn app_error(app: &str, error: &Error) -> String {
    match error {
        Error::PermissionDenied(what) => match what.parse::<Scope>() {
            Ok(scope) => format!(
                "{app} needs your permission to {} ({scope}). You can allow it in the app's \
                 permissions.",
                purpose(scope)
            ),
            Err(_) => format!("{app} is not allowed to do that."),
        },
        Error::QuotaExceeded => {
            format!("{app} has reached a limit for now. Please try again later.")
        }
        // The app's own words to the user, e.g. "only the poll's creator can close it".
        Error::Invalid(message) => format!("{app}: {}", sentence(message)),
        Error::Unavailable(message) => {
            format!("{app} cannot do that right now: {}", sentence(message))
        }
    }
}

/// What a scope lets an app do, as the end of "needs your permission to ...".
fn purpose(scope: Scope) -> &'static str {
    match scope {
        Scope::MessagesSend => "send messages",
        Scope::ProfileRead => "see your profile",
        Scope::PaymentsRequest => "ask you for payments",
        Scope::PaymentsPayout => "send you money",
        Scope::Storage => "keep data for you",
        Scope::AuthLogin => "sign you in to its service",
    }
}

/// `text` trimmed, bounded and ending with a full stop.
fn sentence(text: &str) -> String {
    let mut s: String = text.trim().chars().take(300).collect();
    if s.is_empty() {
        s.push_str("no reason given");
    }
    if !s.ends_with(['.', '!', '?', '。', '！', '？']) {
        s.push('.');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: Option<ErrorKind>, expected: &str) {
        assert_eq!(user_notice("Polls", kind.as_ref()), expected);
    }

    #[test]
    fn notices_are_sentences_without_debug_text() {
        check(
            Some(ErrorKind::App(Error::PermissionDenied("storage".into()))),
            "Polls needs your permission to keep data for you (storage). You can allow it in \
             the app's permissions.",
        );
        check(
            Some(ErrorKind::App(Error::PermissionDenied("../etc".into()))),
            "Polls is not allowed to do that.",
        );
        check(
            Some(ErrorKind::App(Error::Invalid(
                "only the poll's creator can close it".into(),
            ))),
            "Polls: only the poll's creator can close it.",
        );
        check(
            Some(ErrorKind::Busy),
            "Polls is busy right now. Please try again in a moment.",
        );
        check(
            Some(ErrorKind::Trap),
            "Polls stopped unexpectedly. Its developer has been told.",
        );
        check(
            None,
            "Polls sent a reply that could not be shown. Its developer has been told.",
        );
    }
}
