//! The scopes a mini-app can ask a user for, each covering one WIT interface (`payments` is
//! covered by two: asking for money, and paying the user out): one definition shared by
//! manifests, grants and tokens.

use std::fmt;
use std::str::FromStr;

/// A capability a mini-app asks the user for. In `miniapp.toml` it is written as its string form
/// (`name = "messages.send"`); each scope covers exactly one interface of the `minihost:app` world
/// (the functions of an interface that need another scope check it when called).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `messages.send`: post messages and cards to conversations (interface `messaging`).
    MessagesSend,
    /// `profile.read`: read display names and avatars (interface `profile`).
    ProfileRead,
    /// `payments.request`: ask the user to confirm a payment (interface `payments`).
    PaymentsRequest,
    /// `payments.payout`: receive money from the app's merchant account (interface
    /// `payments`, function `pay-user`).
    PaymentsPayout,
    /// `storage`: the app's own key-value storage (interface `storage`).
    Storage,
    /// `auth.login`: one-time login codes for the app's backend (interface `auth`).
    AuthLogin,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 6] = [
        Scope::MessagesSend,
        Scope::ProfileRead,
        Scope::PaymentsRequest,
        Scope::PaymentsPayout,
        Scope::Storage,
        Scope::AuthLogin,
    ];

    /// The scope as written in `miniapp.toml` and in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MessagesSend => "messages.send",
            Scope::ProfileRead => "profile.read",
            Scope::PaymentsRequest => "payments.request",
            Scope::PaymentsPayout => "payments.payout",
            Scope::Storage => "storage",
            Scope::AuthLogin => "auth.login",
        }
    }

    /// The name of the `minihost:app` interface this scope covers (`messaging`, `profile`, ...).
    pub fn interface(self) -> &'static str {
        match self {
            Scope::MessagesSend => "messaging",
            Scope::ProfileRead => "profile",
            Scope::PaymentsRequest | Scope::PaymentsPayout => "payments",
            Scope::Storage => "storage",
            Scope::AuthLogin => "auth",
        }
    }

    /// The first scope that covers a `minihost:app` interface, if that interface needs one.
    pub fn for_interface(interface: &str) -> Option<Scope> {
        Scope::covering(interface).next()
    }

    /// Every scope that covers a `minihost:app` interface (declaring any one of them lets an
    /// app import it).
    pub fn covering(interface: &str) -> impl Iterator<Item = Scope> + '_ {
        Scope::ALL
            .into_iter()
            .filter(move |s| s.interface() == interface)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of the known scopes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scope `{0}`; expected one of: messages.send, profile.read, payments.request, payments.payout, storage, auth.login"
)]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_text_and_interface() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert!(Scope::covering(scope.interface()).any(|s| s == scope));
        }
        assert!("messages.read".parse::<Scope>().is_err());
        assert_eq!(Scope::for_interface("log"), None);
        assert_eq!(
            Scope::covering("payments").collect::<Vec<_>>(),
            [Scope::PaymentsRequest, Scope::PaymentsPayout]
        );
    }
}
