//! The profile capability (`minihost:app/profile`, scope `profile.read`): the invoking user's
//! profile, or a fellow member's who granted the same scope, as `minihost-appsvc` allows.

use minihost_appsvc::AppServices;
use minihost_cap_common::{actor, wit_error};
use minihost_runtime::bindings::profile;
use minihost_runtime::wasmtime::component::{HasData, Linker};
use minihost_runtime::{Capability, CapabilityCx, Error, Interface, StoreState};

/// The scope this capability needs.
pub const SCOPE: &str = "profile.read";

/// The profile capability.
#[derive(Clone)]
pub struct ProfileCapability {
    svc: AppServices,
}

impl ProfileCapability {
    /// Profiles through `svc`.
    pub fn new(svc: AppServices) -> Self {
        ProfileCapability { svc }
    }
}

/// The host side of `minihost:app/profile` for one call.
pub struct ProfileHost<'a>(CapabilityCx<'a, ProfileCapability>);

struct ProfileData;

impl HasData for ProfileData {
    type Data<'a> = ProfileHost<'a>;
}

impl Capability for ProfileCapability {
    const INTERFACE: Interface = Interface::Profile;

    fn add_to_linker(linker: &mut Linker<StoreState>) -> minihost_runtime::wasmtime::Result<()> {
        profile::add_to_linker::<_, ProfileData>(linker, |s| ProfileHost(s.capability::<Self>()))
    }
}

impl profile::Host for ProfileHost<'_> {
    async fn get(
        &mut self,
        user: String,
    ) -> minihost_runtime::wasmtime::Result<Result<profile::Profile, Error>> {
        let bytes = user.len();
        self.0
            .call("get", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                let p = cap.svc.profile(&actor, &user).await.map_err(wit_error)?;
                Ok(profile::Profile {
                    user: p.user,
                    display_name: p.display_name,
                    avatar: p.avatar,
                    locale: p.locale,
                })
            })
            .await
    }
}
