//! Consent: before an app runs for a user who has not answered for the scopes this version
//! declares, the user gets a consent request (each scope with its reason) and the event waits.
//! Answering (on any node) stores the grant (time and version) and runs the waiting events
//! where they wait; a later version that declares new scopes asks again for just those.

use minihost_core::UserId;
use minihost_runtime::Event;
use minihost_store::Install;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// A consent request waiting for the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingConsent {
    /// Request id.
    pub request: String,
    /// The app asking.
    pub app: String,
    /// Its display name.
    pub app_name: String,
    /// The version asking.
    pub version: String,
    /// Where the user triggered it.
    pub conversation: String,
    /// Every scope the version declares: name, reason, whether it is new to the user, and
    /// whether it is granted now.
    pub scopes: Vec<ScopeAsk>,
}

/// One scope in a consent request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScopeAsk {
    /// `messages.send`, ...
    pub name: String,
    /// Why the app wants it, from its manifest.
    pub reason: String,
    /// Not asked before (only these need an answer).
    pub new: bool,
    /// Granted at the moment.
    pub granted: bool,
}

pub(crate) struct Waiting {
    pub request: PendingConsent,
    pub install: Install,
    pub events: Vec<Event>,
}

/// Most events one (user, app) request holds; more are dropped (the user is being asked).
const MAX_WAITING_EVENTS: usize = 16;

/// The events waiting per (user, app), on the node that parked them. The requests themselves
/// are also in the store (any node lists them and takes the answer; the answer's invalidation
/// brings the waiting events here to run). A restart drops the events: the answer is stored,
/// and the next event runs.
#[derive(Default)]
pub(crate) struct ConsentBook {
    waiting: Mutex<HashMap<(UserId, String), Waiting>>,
}

impl ConsentBook {
    /// Parks `event`; returns the request to send when it is new (none when the user is already
    /// being asked).
    pub(crate) fn park(
        &self,
        user: &UserId,
        request: PendingConsent,
        install: Install,
        event: Event,
    ) -> Option<PendingConsent> {
        let mut map = self.waiting.lock().ok()?;
        let key = (user.clone(), request.app.clone());
        match map.get_mut(&key) {
            Some(w) => {
                if w.events.len() < MAX_WAITING_EVENTS {
                    w.events.push(event);
                }
                None
            }
            None => {
                map.insert(
                    key,
                    Waiting {
                        request: request.clone(),
                        install,
                        events: vec![event],
                    },
                );
                Some(request)
            }
        }
    }

    /// Takes what waits for `user`'s answer about `app`.
    pub(crate) fn take(&self, user: &UserId, app: &str) -> Option<Waiting> {
        self.waiting
            .lock()
            .ok()?
            .remove(&(user.clone(), app.to_owned()))
    }

    /// Drops every request of `app` (it was suspended): their events never run.
    pub(crate) fn drop_app(&self, app: &str) -> usize {
        self.waiting.lock().map_or(0, |mut m| {
            let before = m.len();
            m.retain(|(_, a), _| a != app);
            before - m.len()
        })
    }
}
