//! What the host knows about one invocation, kept host-side in the store (never in the
//! sandbox): who and where, the grant checked on every capability call, optional limits, and a
//! type map of per-invocation data for capabilities.

use std::any::{Any, TypeId};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use crate::bindings::Context;
use crate::config::Limits;

/// Decides whether a scope is granted. Checked on every capability call, so an implementation
/// backed by live state (a revocation list) makes revocation apply at the next call.
///
/// Scopes are opaque strings to the runtime (`"messages.send"`, `"storage"`, ...).
pub trait Grant: Send + Sync {
    /// Whether `scope` is granted right now.
    fn allows(&self, scope: &str) -> bool;
}

/// A fixed set of granted scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// No scope at all.
    pub fn none() -> Scopes {
        Scopes::default()
    }

    /// The scopes listed.
    pub fn new<I, S>(scopes: I) -> Scopes
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Scopes(scopes.into_iter().map(Into::into).collect())
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl Grant for Scopes {
    fn allows(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }
}

/// Typed per-invocation data for capabilities (one value per type), like `http::Extensions`.
/// The host puts in what its capabilities need (a database handle, a budget, a clock); a
/// capability reads it back by type.
#[derive(Default)]
pub struct Extensions(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Extensions {
    /// Stores `value`, returning the previous value of that type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.0
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// The value of type `T`, if any.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref()
    }

    /// The value of type `T`, mutably, if any.
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.0.get_mut(&TypeId::of::<T>())?.downcast_mut()
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        self.0
            .remove(&TypeId::of::<T>())
            .and_then(|b| b.downcast::<T>().ok().map(|b| *b))
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extensions({} values)", self.0.len())
    }
}

/// One invocation's host-side context: built by the host for each event and handed to
/// [`Runtime::invoke`](crate::Runtime::invoke). The guest sees only [`Context`] (app, user,
/// conversation, locale); the grant, limits and extensions stay in the host.
///
/// ```
/// use minihost_runtime::{Invocation, Scopes};
/// let inv = Invocation::new("polls", "u_3f9a", "c_42")
///     .locale("fr")
///     .grant(Scopes::new(["messages.send"]));
/// assert_eq!(inv.context().conversation, "c_42");
/// ```
pub struct Invocation {
    /// The app's id.
    pub app: String,
    /// The app-scoped id of the user who caused the event.
    pub user: String,
    /// The conversation of the event.
    pub conversation: String,
    /// The user's locale.
    pub locale: String,
    /// Whether the user is the app's developer.
    pub developer: bool,
    /// The user's grant for this app, checked on every capability call.
    pub grant: Arc<dyn Grant>,
    /// Bounds for this invocation (`None`: the runtime's defaults).
    pub limits: Option<Limits>,
    /// Per-invocation data for capabilities.
    pub extensions: Extensions,
    /// Who owns the app (its developer), for fair admission: one owner's apps can never take
    /// every execution slot. `None`: the app is its own owner.
    pub owner: Option<String>,
}

impl Invocation {
    /// An invocation with locale `en`, no scope granted and default limits.
    pub fn new(
        app: impl Into<String>,
        user: impl Into<String>,
        conversation: impl Into<String>,
    ) -> Invocation {
        Invocation {
            app: app.into(),
            user: user.into(),
            conversation: conversation.into(),
            locale: "en".into(),
            developer: false,
            grant: Arc::new(Scopes::none()),
            limits: None,
            extensions: Extensions::default(),
            owner: None,
        }
    }

    /// Sets the app's owner, for fair admission.
    pub fn owner(mut self, owner: impl Into<String>) -> Invocation {
        self.owner = Some(owner.into());
        self
    }

    /// Sets the locale.
    pub fn locale(mut self, locale: impl Into<String>) -> Invocation {
        self.locale = locale.into();
        self
    }

    /// Marks the user as the app's developer.
    pub fn developer(mut self, developer: bool) -> Invocation {
        self.developer = developer;
        self
    }

    /// Sets the grant (a [`Scopes`] set or any live [`Grant`]).
    pub fn grant(mut self, grant: impl Grant + 'static) -> Invocation {
        self.grant = Arc::new(grant);
        self
    }

    /// Sets a shared grant.
    pub fn shared_grant(mut self, grant: Arc<dyn Grant>) -> Invocation {
        self.grant = grant;
        self
    }

    /// Overrides the runtime's default limits for this invocation.
    pub fn limits(mut self, limits: Limits) -> Invocation {
        self.limits = Some(limits);
        self
    }

    /// Adds a typed value for capabilities to read.
    pub fn with<T: Send + Sync + 'static>(mut self, value: T) -> Invocation {
        self.extensions.insert(value);
        self
    }

    /// The context record the guest receives.
    pub fn context(&self) -> Context {
        Context {
            app: self.app.clone(),
            user: self.user.clone(),
            conversation: self.conversation.clone(),
            locale: self.locale.clone(),
            developer: self.developer,
        }
    }
}

impl fmt::Debug for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invocation")
            .field("app", &self.app)
            .field("user", &self.user)
            .field("conversation", &self.conversation)
            .field("locale", &self.locale)
            .field("developer", &self.developer)
            .field("limits", &self.limits)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_allow_only_listed() {
        let s = Scopes::new(["messages.send", "storage"]);
        assert!(s.allows("storage"));
        assert!(!s.allows("profile.read"));
        assert!(!Scopes::none().allows("storage"));
    }

    #[test]
    fn extensions_are_typed() {
        let mut e = Extensions::default();
        assert_eq!(e.insert(3u32), None);
        assert_eq!(e.insert(4u32), Some(3));
        assert_eq!(e.get::<u32>(), Some(&4));
        assert_eq!(e.get::<u64>(), None);
        e.insert(vec![1u8]);
        if let Some(v) = e.get_mut::<Vec<u8>>() {
            v.push(2);
        }
        assert_eq!(e.remove::<Vec<u8>>(), Some(vec![1, 2]));
    }
}
