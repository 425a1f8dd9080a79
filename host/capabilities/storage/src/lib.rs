//! The storage capability (`minihost:app/storage`, scope `storage`): a shared bucket per app and
//! a private bucket per (app, user), with quotas, through `minihost-appsvc`.

use minihost_appsvc::{AppServices, Bucket as SvcBucket};
use minihost_cap_common::{actor, wit_error};
use minihost_runtime::bindings::storage::{self, Bucket};
use minihost_runtime::wasmtime::component::{HasData, Linker};
use minihost_runtime::{Capability, CapabilityCx, Error, Interface, StoreState};

/// The scope this capability needs.
pub const SCOPE: &str = "storage";

/// The storage capability.
#[derive(Clone)]
pub struct StorageCapability {
    svc: AppServices,
}

impl StorageCapability {
    /// Storage through `svc`.
    pub fn new(svc: AppServices) -> Self {
        StorageCapability { svc }
    }
}

fn bucket(b: Bucket) -> SvcBucket {
    match b {
        Bucket::Shared => SvcBucket::Shared,
        Bucket::User => SvcBucket::User,
    }
}

/// The host side of `minihost:app/storage` for one call.
pub struct StorageHost<'a>(CapabilityCx<'a, StorageCapability>);

struct StorageData;

impl HasData for StorageData {
    type Data<'a> = StorageHost<'a>;
}

impl Capability for StorageCapability {
    const INTERFACE: Interface = Interface::Storage;

    fn add_to_linker(linker: &mut Linker<StoreState>) -> minihost_runtime::wasmtime::Result<()> {
        storage::add_to_linker::<_, StorageData>(linker, |s| StorageHost(s.capability::<Self>()))
    }
}

impl storage::Host for StorageHost<'_> {
    async fn get(
        &mut self,
        b: Bucket,
        key: String,
    ) -> minihost_runtime::wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let bytes = key.len();
        self.0
            .call("get", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                cap.svc
                    .storage_get(&actor, bucket(b), &key)
                    .await
                    .map_err(wit_error)
            })
            .await
    }

    async fn set(
        &mut self,
        b: Bucket,
        key: String,
        value: Vec<u8>,
    ) -> minihost_runtime::wasmtime::Result<Result<(), Error>> {
        let bytes = key.len() + value.len();
        self.0
            .call("set", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                cap.svc
                    .storage_set(&actor, bucket(b), &key, &value)
                    .await
                    .map_err(wit_error)
            })
            .await
    }

    async fn delete(
        &mut self,
        b: Bucket,
        key: String,
    ) -> minihost_runtime::wasmtime::Result<Result<bool, Error>> {
        let bytes = key.len();
        self.0
            .call("delete", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                cap.svc
                    .storage_delete(&actor, bucket(b), &key)
                    .await
                    .map_err(wit_error)
            })
            .await
    }

    async fn keys(
        &mut self,
        b: Bucket,
        prefix: String,
    ) -> minihost_runtime::wasmtime::Result<Result<Vec<String>, Error>> {
        let bytes = prefix.len();
        self.0
            .call("keys", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                cap.svc
                    .storage_keys(&actor, bucket(b), &prefix)
                    .await
                    .map_err(wit_error)
            })
            .await
    }

    async fn compare_and_set(
        &mut self,
        b: Bucket,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> minihost_runtime::wasmtime::Result<Result<bool, Error>> {
        let bytes = key.len() + expected.as_ref().map_or(0, Vec::len) + value.len();
        self.0
            .call("compare-and-set", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                cap.svc
                    .storage_compare_and_set(&actor, bucket(b), &key, expected.as_deref(), &value)
                    .await
                    .map_err(wit_error)
            })
            .await
    }
}
