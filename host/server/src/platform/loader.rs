//! Loading app versions for the runtime: component bytes from the store, compiled (or read from
//! the disk cache) once per content hash and kept in memory; and sideloading, which validates a
//! manifest and component (with the static import check) before anything is stored.

use minihost_api::{ApiError, Sideloaded};
use minihost_manifest::Manifest;
use minihost_runtime::{LoadError, LoadedApp, Runtime};
use minihost_store::{AppVersion, Conversation, Store, StoreError, User, VersionStatus};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// An app version ready to run.
pub(crate) struct Loaded {
    /// Its manifest.
    pub manifest: Manifest,
    /// The compiled, pre-linked component.
    pub app: Arc<LoadedApp>,
}

pub(crate) struct Loader {
    store: Store,
    runtime: Runtime,
    by_hash: Mutex<HashMap<String, Arc<Loaded>>>,
}

/// Most versions kept compiled in memory; past it the cache starts afresh (the disk cache
/// makes reloading cheap).
const MAX_CACHED: usize = 256;

fn invalid(field: &str, why: impl Into<String>) -> ApiError {
    ApiError::invalid(field, why)
}

fn manifest_errors(e: minihost_manifest::ManifestErrors) -> ApiError {
    let text: Vec<String> = e.iter().map(ToString::to_string).collect();
    invalid("manifest", text.join("; "))
}

impl Loader {
    pub(crate) fn new(store: Store, runtime: Runtime) -> Self {
        Loader {
            store,
            runtime,
            by_hash: Mutex::new(HashMap::new()),
        }
    }

    /// The runnable form of `app`@`version`.
    pub(crate) async fn get(&self, app: &str, version: &str) -> Result<Arc<Loaded>, ApiError> {
        let (_, hash, _) = self
            .store
            .version_meta(app, version)
            .await?
            .ok_or(ApiError::NotFound("app version"))?;
        if let Some(hit) = self.cached(&hash) {
            return Ok(hit);
        }
        let v = self
            .store
            .version(app, version)
            .await?
            .ok_or(ApiError::NotFound("app version"))?;
        let manifest = minihost_manifest::parse(&v.manifest).map_err(|e| {
            ApiError::Internal(format!(
                "stored manifest of {app}@{version} no longer parses: {e:?}"
            ))
        })?;
        let loaded = self.compile(v.wasm).await.map_err(|e| {
            ApiError::Internal(format!(
                "stored component of {app}@{version} does not load: {e}"
            ))
        })?;
        let entry = Arc::new(Loaded {
            manifest,
            app: loaded,
        });
        if let Ok(mut map) = self.by_hash.lock() {
            if map.len() >= MAX_CACHED {
                map.clear();
            }
            map.insert(hash, entry.clone());
        }
        Ok(entry)
    }

    /// The runtime apps run on.
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn cached(&self, hash: &str) -> Option<Arc<Loaded>> {
        self.by_hash.lock().ok()?.get(hash).cloned()
    }

    async fn compile(&self, wasm: Vec<u8>) -> Result<Arc<LoadedApp>, LoadError> {
        let runtime = self.runtime.clone();
        // Compiling is CPU work: keep it off the async threads.
        tokio::task::spawn_blocking(move || runtime.load(&wasm))
            .await
            .unwrap_or_else(|e| Err(LoadError::Invalid(format!("compile task: {e}"))))
    }

    /// Checks a manifest and its component: the manifest parses, the component compiles and
    /// links against the world, and it imports nothing its manifest does not cover.
    async fn validate(
        &self,
        manifest_text: &str,
        component: &[u8],
    ) -> Result<(Manifest, Arc<LoadedApp>), ApiError> {
        let manifest = minihost_manifest::parse(manifest_text).map_err(manifest_errors)?;
        let app = self
            .compile(component.to_vec())
            .await
            .map_err(|e| invalid("component", e.to_string()))?;
        let findings =
            minihost_manifest::check_imports(app.imports().iter().map(String::as_str), &manifest);
        if !findings.is_empty() {
            let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
            return Err(invalid("component", text.join("; ")));
        }
        Ok((manifest, app))
    }

    /// Validates and stores a version with `status`; returns its id and version.
    async fn store_version(
        &self,
        developer: &User,
        manifest_text: String,
        component: Vec<u8>,
        status: VersionStatus,
    ) -> Result<(String, String), ApiError> {
        let (manifest, app) = self.validate(&manifest_text, &component).await?;
        let id = manifest.id.as_str().to_owned();
        let version = manifest.version.to_string();
        self.store
            .register_app(&id, &manifest.name, &developer.id)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    ApiError::Conflict(format!("app id {id:?} belongs to another developer"))
                }
                other => other.into(),
            })?;
        let hash = hex::encode(Sha256::digest(&component));
        self.store
            .put_version(&AppVersion {
                app_id: id.clone(),
                version: version.clone(),
                manifest: manifest_text,
                wasm: component,
                wasm_sha256: hash.clone(),
                status,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ApiError::Conflict(format!(
                    "{id}@{version} was submitted for review and cannot change; bump the version"
                )),
                other => other.into(),
            })?;
        if let Ok(mut map) = self.by_hash.lock() {
            map.insert(hash, Arc::new(Loaded { manifest, app }));
        }
        Ok((id, version))
    }

    /// Validates and installs a developer's unreviewed version in a group they own.
    pub(crate) async fn sideload(
        &self,
        developer: &User,
        conversation: &Conversation,
        manifest_text: String,
        component: Vec<u8>,
    ) -> Result<Sideloaded, ApiError> {
        let (id, version) = self
            .store_version(
                developer,
                manifest_text,
                component,
                VersionStatus::Sideloaded,
            )
            .await?;
        self.store
            .install(&conversation.id, &id, &version, &developer.id, true)
            .await?;
        Ok(Sideloaded {
            app: id,
            version,
            findings: Vec::new(),
        })
    }

    /// Validates a version and queues it for review.
    pub(crate) async fn submit(
        &self,
        developer: &User,
        manifest_text: String,
        component: Vec<u8>,
    ) -> Result<Sideloaded, ApiError> {
        let (app, version) = self
            .store_version(
                developer,
                manifest_text,
                component,
                VersionStatus::Submitted,
            )
            .await?;
        Ok(Sideloaded {
            app,
            version,
            findings: Vec::new(),
        })
    }

    /// Installs the newest approved version of `app` in a conversation.
    pub(crate) async fn install(
        &self,
        user: &User,
        conversation: &Conversation,
        app: &str,
    ) -> Result<Sideloaded, ApiError> {
        let newest = self
            .store
            .app_versions_with_status(app, VersionStatus::Approved)
            .await?
            .into_iter()
            .filter_map(|v| semver::Version::parse(&v).ok())
            .max()
            .ok_or(ApiError::NotFound("approved version of that app"))?
            .to_string();
        // Load it now, so the first event does not pay for compiling.
        self.get(app, &newest).await?;
        self.store
            .install(&conversation.id, app, &newest, &user.id, false)
            .await?;
        Ok(Sideloaded {
            app: app.to_owned(),
            version: newest,
            findings: Vec::new(),
        })
    }
}
