//! Simulated capabilities for `minihost app run`: the same [`Capability`] plumbing as the server
//! (so grants, call bounds and recording behave identically), backed by an in-memory
//! [`SimWorld`] instead of the messenger. Messaging records sends, profile answers a fake
//! profile, storage is an in-memory map, payments records requests, auth hands out a fake code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use minihost_runtime::bindings::{auth, messaging, payments, profile, storage};
use minihost_runtime::wasmtime::Result as WasmResult;
use minihost_runtime::wasmtime::component::{HasData, Linker};
use minihost_runtime::{ByteSize, Capability, CapabilityCx, Content, Error, Interface, StoreState};

/// Scopes, as the platform names them.
pub(crate) const MESSAGES_SEND: &str = "messages.send";
pub(crate) const PROFILE_READ: &str = "profile.read";
pub(crate) const PAYMENTS_REQUEST: &str = "payments.request";
pub(crate) const STORAGE: &str = "storage";
pub(crate) const AUTH_LOGIN: &str = "auth.login";

/// Messages the simulated messenger lets an app send per run.
const SEND_BUDGET: u32 = 20;

/// What the simulated capabilities did during a run.
#[derive(Default)]
pub(crate) struct SimWorld {
    /// (message id, conversation, content) of each message sent.
    pub(crate) sent: Vec<(String, String, Content)>,
    /// (message id, new content) of each update.
    pub(crate) updated: Vec<(String, Content)>,
    /// (request id, order) of each payment request.
    pub(crate) payments: Vec<(String, payments::Order)>,
    /// Storage: (bucket, owner, key) -> value.
    pub(crate) storage: BTreeMap<(String, String), Vec<u8>>,
}

/// The world shared by the simulated capabilities of one run.
#[derive(Clone, Default)]
pub(crate) struct Shared(Arc<Mutex<SimWorld>>);

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SimWorld> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Content the messenger would reject is rejected here too.
fn validate(content: &Content) -> Result<(), Error> {
    crate::render::to_core(content)
        .validate()
        .map_err(|e| Error::Invalid(e.to_string()))
}

macro_rules! view {
    ($cap:ident, $host:ident, $data:ident, $interface:expr, $module:ident) => {
        /// The host side of one call.
        pub(crate) struct $host<'a>(CapabilityCx<'a, $cap>);
        struct $data;
        impl HasData for $data {
            type Data<'a> = $host<'a>;
        }
        impl Capability for $cap {
            const INTERFACE: Interface = $interface;
            fn add_to_linker(linker: &mut Linker<StoreState>) -> WasmResult<()> {
                $module::add_to_linker::<_, $data>(linker, |s| $host(s.capability::<Self>()))
            }
        }
    };
}

/// Simulated `messaging`: records sends to any conversation.
pub(crate) struct SimMessaging(pub(crate) Shared);
view!(
    SimMessaging,
    SimMessagingHost,
    SimMessagingData,
    Interface::Messaging,
    messaging
);

impl messaging::Host for SimMessagingHost<'_> {
    async fn send(
        &mut self,
        conversation: String,
        content: Content,
    ) -> WasmResult<Result<String, Error>> {
        let bytes = conversation.len() + content.byte_size();
        self.0
            .call("send", Some(MESSAGES_SEND), bytes, async |cap, _| {
                validate(&content)?;
                let mut world = cap.0.lock();
                if world.sent.len() as u32 >= SEND_BUDGET {
                    return Err(Error::QuotaExceeded);
                }
                let id = format!("sim-msg-{}", world.sent.len() + 1);
                world.sent.push((id.clone(), conversation, content));
                Ok(id)
            })
            .await
    }

    async fn update(&mut self, message: String, content: Content) -> WasmResult<Result<(), Error>> {
        let bytes = message.len() + content.byte_size();
        self.0
            .call("update", Some(MESSAGES_SEND), bytes, async |cap, _| {
                validate(&content)?;
                let mut world = cap.0.lock();
                if !world.sent.iter().any(|(id, _, _)| *id == message) {
                    return Err(Error::Invalid(format!(
                        "no message `{message}` sent by this app"
                    )));
                }
                world.updated.push((message, content));
                Ok(())
            })
            .await
    }

    async fn budget(&mut self, conversation: String) -> WasmResult<Result<u32, Error>> {
        self.0
            .call(
                "budget",
                Some(MESSAGES_SEND),
                conversation.len(),
                async |cap, _| Ok(SEND_BUDGET.saturating_sub(cap.0.lock().sent.len() as u32)),
            )
            .await
    }
}

/// Simulated `profile`: a made-up profile for any user.
pub(crate) struct SimProfile;
view!(
    SimProfile,
    SimProfileHost,
    SimProfileData,
    Interface::Profile,
    profile
);

impl profile::Host for SimProfileHost<'_> {
    async fn get(&mut self, user: String) -> WasmResult<Result<profile::Profile, Error>> {
        self.0
            .call("get", Some(PROFILE_READ), user.len(), async |_, data| {
                let inv = data.invocation();
                let display_name = if user == inv.user {
                    "Simulated User".to_string()
                } else {
                    format!("Member {user}")
                };
                Ok(profile::Profile {
                    user,
                    display_name,
                    avatar: None,
                    locale: inv.locale.clone(),
                })
            })
            .await
    }
}

/// Simulated `payments`: records requests (the simulated user never confirms).
pub(crate) struct SimPayments(pub(crate) Shared);
view!(
    SimPayments,
    SimPaymentsHost,
    SimPaymentsData,
    Interface::Payments,
    payments
);

impl payments::Host for SimPaymentsHost<'_> {
    async fn request(&mut self, order: payments::Order) -> WasmResult<Result<String, Error>> {
        self.0
            .call(
                "request",
                Some(PAYMENTS_REQUEST),
                order.byte_size(),
                async |cap, _| {
                    if order.amount == 0 {
                        return Err(Error::Invalid("amount must be positive".into()));
                    }
                    if order.currency.len() != 3
                        || !order.currency.chars().all(|c| c.is_ascii_uppercase())
                    {
                        return Err(Error::Invalid(
                            "currency must be an ISO 4217 code such as EUR".into(),
                        ));
                    }
                    let mut world = cap.0.lock();
                    // Same idempotency key, same request.
                    if let Some((id, _)) = world
                        .payments
                        .iter()
                        .find(|(_, o)| o.idempotency_key == order.idempotency_key)
                    {
                        return Ok(id.clone());
                    }
                    let id = format!("sim-pay-{}", world.payments.len() + 1);
                    world.payments.push((id.clone(), order));
                    Ok(id)
                },
            )
            .await
    }
}

/// Simulated `storage`: an in-memory map for the run.
pub(crate) struct SimStorage(pub(crate) Shared);
view!(
    SimStorage,
    SimStorageHost,
    SimStorageData,
    Interface::Storage,
    storage
);

/// The map key of `key` in `bucket` for the invoking user.
fn storage_key(bucket: storage::Bucket, user: &str, key: &str) -> (String, String) {
    match bucket {
        storage::Bucket::Shared => ("shared".into(), key.into()),
        storage::Bucket::User => (format!("user:{user}"), key.into()),
    }
}

impl storage::Host for SimStorageHost<'_> {
    async fn get(
        &mut self,
        bucket: storage::Bucket,
        key: String,
    ) -> WasmResult<Result<Option<Vec<u8>>, Error>> {
        self.0
            .call("get", Some(STORAGE), key.len(), async |cap, data| {
                let k = storage_key(bucket, &data.invocation().user, &key);
                Ok(cap.0.lock().storage.get(&k).cloned())
            })
            .await
    }

    async fn set(
        &mut self,
        bucket: storage::Bucket,
        key: String,
        value: Vec<u8>,
    ) -> WasmResult<Result<(), Error>> {
        self.0
            .call(
                "set",
                Some(STORAGE),
                key.len() + value.len(),
                async |cap, data| {
                    let k = storage_key(bucket, &data.invocation().user, &key);
                    cap.0.lock().storage.insert(k, value);
                    Ok(())
                },
            )
            .await
    }

    async fn delete(
        &mut self,
        bucket: storage::Bucket,
        key: String,
    ) -> WasmResult<Result<bool, Error>> {
        self.0
            .call("delete", Some(STORAGE), key.len(), async |cap, data| {
                let k = storage_key(bucket, &data.invocation().user, &key);
                Ok(cap.0.lock().storage.remove(&k).is_some())
            })
            .await
    }

    async fn keys(
        &mut self,
        bucket: storage::Bucket,
        prefix: String,
    ) -> WasmResult<Result<Vec<String>, Error>> {
        self.0
            .call("keys", Some(STORAGE), prefix.len(), async |cap, data| {
                let (owner, _) = storage_key(bucket, &data.invocation().user, "");
                Ok(cap
                    .0
                    .lock()
                    .storage
                    .keys()
                    .filter(|(o, k)| *o == owner && k.starts_with(&prefix))
                    .map(|(_, k)| k.clone())
                    .collect())
            })
            .await
    }
}

/// Simulated `auth`: a fake one-time code.
pub(crate) struct SimAuth;
view!(SimAuth, SimAuthHost, SimAuthData, Interface::Auth, auth);

impl auth::Host for SimAuthHost<'_> {
    async fn login_code(&mut self, code_challenge: String) -> WasmResult<Result<String, Error>> {
        self.0
            .call(
                "login-code",
                Some(AUTH_LOGIN),
                code_challenge.len(),
                async |_, data| Ok(format!("sim-login-code-{}", data.invocation().user)),
            )
            .await
    }
}
