//! The one `bindgen!` of the `minihost:app/miniapp` world (host side), plus [`Interface`], the
//! names of the world's imported interfaces. Everything here is re-exported by the crate root;
//! capability crates implement the generated `Host` traits of exactly one interface each.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "miniapp",
    path: "../../wit",
    // Every import is async (capabilities do IO) and trappable: the runtime, not the
    // capability, turns a flood of calls or a host call past the deadline into a trap. The WIT
    // `error` stays a plain value (no `trappable_error_type`), so a capability can only return
    // typed errors to the guest; it has no way to trap by accident.
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [PartialEq, Eq],
});

pub use minihost::app::types::{
    Action, Block, Button, Card, Command, Incoming, Input, InputValue, PaymentStatus, PaymentUpdate,
};
pub use minihost::app::{auth, log, messaging, payments, profile, storage, timers};

/// One imported interface of the `miniapp` world: the unit a [`Capability`](crate::Capability)
/// implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interface {
    /// `minihost:app/messaging`: send and update messages.
    Messaging,
    /// `minihost:app/profile`: read profiles.
    Profile,
    /// `minihost:app/payments`: request payments, refund them, pay users out.
    Payments,
    /// `minihost:app/storage`: per-app key-value storage.
    Storage,
    /// `minihost:app/log`: lines for the developer's invocation log.
    Log,
    /// `minihost:app/auth`: login codes for the app's backend.
    Auth,
    /// `minihost:app/timers`: `timer` events later.
    Timers,
}

impl Interface {
    /// Every interface, in declaration order.
    pub const ALL: [Interface; 7] = [
        Interface::Messaging,
        Interface::Profile,
        Interface::Payments,
        Interface::Storage,
        Interface::Log,
        Interface::Auth,
        Interface::Timers,
    ];

    /// The short name, as in WIT (`messaging`, `profile`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Interface::Messaging => "messaging",
            Interface::Profile => "profile",
            Interface::Payments => "payments",
            Interface::Storage => "storage",
            Interface::Log => "log",
            Interface::Auth => "auth",
            Interface::Timers => "timers",
        }
    }

    /// The fully qualified name a component imports, e.g. `minihost:app/messaging@0.2.0`.
    pub fn qualified_name(self) -> &'static str {
        match self {
            Interface::Messaging => "minihost:app/messaging@0.2.0",
            Interface::Profile => "minihost:app/profile@0.2.0",
            Interface::Payments => "minihost:app/payments@0.2.0",
            Interface::Storage => "minihost:app/storage@0.2.0",
            Interface::Log => "minihost:app/log@0.2.0",
            Interface::Auth => "minihost:app/auth@0.2.0",
            Interface::Timers => "minihost:app/timers@0.2.0",
        }
    }

    /// The interface a component import name refers to, if it is one of ours (any version).
    pub fn from_import(name: &str) -> Option<Interface> {
        let rest = name.strip_prefix("minihost:app/")?;
        let short = rest.split('@').next().unwrap_or(rest);
        Interface::ALL.into_iter().find(|i| i.name() == short)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Error {
    /// The kind as a short stable string (`permission-denied`, `quota-exceeded`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::PermissionDenied(_) => "permission-denied",
            Error::QuotaExceeded => "quota-exceeded",
            Error::Invalid(_) => "invalid",
            Error::Unavailable(_) => "unavailable",
        }
    }
}

impl Content {
    /// Plain text content.
    pub fn text(text: impl Into<String>) -> Content {
        Content::Text(text.into())
    }
}

impl Event {
    /// The kind as a short stable string (`command`, `message`, `action`, `opened`, `payment`,
    /// `timer`).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Command(_) => "command",
            Event::Message(_) => "message",
            Event::Action(_) => "action",
            Event::Opened => "opened",
            Event::Payment(_) => "payment",
            Event::Timer(_) => "timer",
        }
    }

    /// A `command` event: `/name args`.
    pub fn command(name: impl Into<String>, args: impl Into<String>) -> Event {
        Event::Command(Command {
            name: name.into(),
            args: args.into(),
        })
    }
}

/// How many bytes a value carries across the host boundary (strings and lists by length, fixed
/// overhead ignored). The runtime checks it against [`Limits::max_call_bytes`](crate::Limits).
pub trait ByteSize {
    /// The payload size in bytes.
    fn byte_size(&self) -> usize;
}

macro_rules! fixed_size {
    ($($t:ty),*) => {$(
        impl ByteSize for $t {
            fn byte_size(&self) -> usize {
                std::mem::size_of::<$t>()
            }
        }
    )*};
}
fixed_size!((), bool, u8, u16, u32, u64, i32, i64);

impl ByteSize for String {
    fn byte_size(&self) -> usize {
        self.len()
    }
}

impl ByteSize for str {
    fn byte_size(&self) -> usize {
        self.len()
    }
}

impl<T: ByteSize> ByteSize for Vec<T> {
    fn byte_size(&self) -> usize {
        self.iter().map(ByteSize::byte_size).sum()
    }
}

impl<T: ByteSize> ByteSize for Option<T> {
    fn byte_size(&self) -> usize {
        self.as_ref().map_or(0, ByteSize::byte_size)
    }
}

impl<T: ByteSize + ?Sized> ByteSize for &T {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
}

impl<A: ByteSize, B: ByteSize> ByteSize for (A, B) {
    fn byte_size(&self) -> usize {
        self.0.byte_size() + self.1.byte_size()
    }
}

impl ByteSize for Content {
    fn byte_size(&self) -> usize {
        match self {
            Content::Text(t) => t.len(),
            Content::Card(card) => card.byte_size(),
        }
    }
}

impl ByteSize for Card {
    fn byte_size(&self) -> usize {
        self.blocks.iter().map(ByteSize::byte_size).sum()
    }
}

impl ByteSize for Block {
    fn byte_size(&self) -> usize {
        match self {
            Block::Text(t) | Block::Image(t) => t.len(),
            Block::Button(b) => b.id.len() + b.label.len() + b.value.len(),
            Block::Input(i) => i.id.len() + i.placeholder.len(),
            Block::Divider => 0,
        }
    }
}

impl ByteSize for profile::Profile {
    fn byte_size(&self) -> usize {
        self.user.len() + self.display_name.len() + self.avatar.byte_size() + self.locale.len()
    }
}

impl ByteSize for payments::Order {
    fn byte_size(&self) -> usize {
        8 + self.currency.len() + self.description.len() + self.idempotency_key.len()
    }
}

impl ByteSize for payments::Payout {
    fn byte_size(&self) -> usize {
        8 + self.currency.len() + self.description.len() + self.idempotency_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_round_trip() {
        for i in Interface::ALL {
            assert_eq!(Interface::from_import(i.qualified_name()), Some(i));
            assert_eq!(Interface::ALL[i.index()], i);
        }
        assert_eq!(Interface::from_import("wasi:cli/stdout@0.2.0"), None);
        assert_eq!(Interface::from_import("minihost:app/unknown@0.2.0"), None);
    }

    #[test]
    fn content_byte_size_counts_strings() {
        let card = Content::Card(Card {
            blocks: vec![
                Block::Text("abc".into()),
                Block::Button(Button {
                    id: "i".into(),
                    label: "ll".into(),
                    value: "vvv".into(),
                }),
                Block::Divider,
            ],
        });
        assert_eq!(card.byte_size(), 3 + 1 + 2 + 3);
    }
}
