//! The auth capability (`minihost:app/auth`, scope `auth.login`): `login-code(challenge)` asks
//! the broker for a one-time code bound to this app, the invoking user and the backend's PKCE
//! challenge. The app hands it to its backend, which exchanges it at `/oauth/token`. The grant is
//! re-read at the call, so a revoked `auth.login` refuses the next code at once.

use minihost_appsvc::{AppError, AppServices};
use minihost_broker::service::Broker;
use minihost_broker::{AppId, PkceChallenge, UnixTime};
use minihost_cap_common::{actor, wit_error};
use minihost_runtime::bindings::auth;
use minihost_runtime::wasmtime::component::{HasData, Linker};
use minihost_runtime::{Capability, CapabilityCx, Error, Interface, StoreState};
use std::sync::Arc;

/// The scope this capability needs.
pub const SCOPE: &str = "auth.login";

/// The auth capability.
#[derive(Clone)]
pub struct AuthCapability {
    svc: AppServices,
    broker: Arc<Broker>,
}

impl AuthCapability {
    /// Login codes from `broker`, grants checked through `svc`.
    pub fn new(svc: AppServices, broker: Arc<Broker>) -> Self {
        AuthCapability { svc, broker }
    }
}

/// The host side of `minihost:app/auth` for one call.
pub struct AuthHost<'a>(CapabilityCx<'a, AuthCapability>);

struct AuthData;

impl HasData for AuthData {
    type Data<'a> = AuthHost<'a>;
}

impl Capability for AuthCapability {
    const INTERFACE: Interface = Interface::Auth;

    fn add_to_linker(linker: &mut Linker<StoreState>) -> minihost_runtime::wasmtime::Result<()> {
        auth::add_to_linker::<_, AuthData>(linker, |s| AuthHost(s.capability::<Self>()))
    }
}

impl auth::Host for AuthHost<'_> {
    async fn login_code(
        &mut self,
        code_challenge: String,
    ) -> minihost_runtime::wasmtime::Result<Result<String, Error>> {
        let bytes = code_challenge.len();
        self.0
            .call("login-code", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                cap.svc
                    .require_scope(&actor, SCOPE)
                    .await
                    .map_err(wit_error)?;
                let challenge = PkceChallenge::parse(&code_challenge, "S256").map_err(|_| {
                    Error::Invalid(
                        "code-challenge must be a PKCE S256 challenge (43 base64url characters)"
                            .into(),
                    )
                })?;
                let app = AppId::parse(&actor.app)
                    .map_err(|e| wit_error(AppError::Invalid(e.to_string())))?;
                let now = UnixTime::from_millis(minihost_core::now_millis());
                let code = cap
                    .broker
                    .issue_login_code(&app, &actor.user, challenge, now)
                    .await
                    .map_err(|e| Error::Unavailable(format!("login codes: {e}")))?;
                cap.svc
                    .note_privacy(&actor, SCOPE, "ok")
                    .await
                    .map_err(wit_error)?;
                Ok(code.expose().to_owned())
            })
            .await
    }
}
