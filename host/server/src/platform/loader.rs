//! Loading app versions for the runtime: component bytes from the store, compiled (or read from
//! the disk cache) once per content hash and kept in memory; and sideloading, which validates a
//! manifest and component before anything is stored. The component is checked first (its
//! imports, read without compiling, against the manifest) and compiled only if that passes,
//! within the runtime's compile bounds.

use minihost_api::{ApiError, Sideloaded};
use minihost_hub::{Fanout, Invalidation};
use minihost_manifest::Manifest;
use minihost_runtime::{ComponentInfo, LoadError, LoadOrigin, LoadedApp, Runtime};
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
    /// The policy a manifest's webhook URL must meet.
    webhooks: super::WebhookOptions,
    by_hash: Mutex<HashMap<String, Arc<Loaded>>>,
    /// The content hash of each (app, version) this node stored or read: every event asks,
    /// and a query per event is load a storm of refused events would put on the database.
    /// Kept right by this node's uploads (a sideloaded version may be replaced), and by the
    /// `AppChanged` invalidation other nodes publish when they store a version.
    hash_of: Mutex<HashMap<(String, String), String>>,
    /// Where a stored version is announced to other nodes.
    fanout: Arc<dyn Fanout>,
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

/// The answer to a component that did not load.
fn load_error(e: LoadError) -> ApiError {
    match e {
        LoadError::TooLarge { .. }
        | LoadError::Invalid(_)
        | LoadError::Link { .. }
        | LoadError::CompileLimit(_) => invalid("component", e.to_string()),
        LoadError::Busy(_) => {
            ApiError::Unavailable("every compile slot is busy; try again in a minute")
        }
        LoadError::Worker(_) => ApiError::Internal(e.to_string()),
    }
}

impl Loader {
    /// Tells the other nodes that the apps installed in `conversation` changed (this node's
    /// store forgot them already).
    fn installs_changed(&self, conversation: &minihost_core::ConversationId) {
        self.fanout.invalidate(Invalidation::Installs {
            conversation: conversation.clone(),
        });
    }

    pub(crate) fn new(
        store: Store,
        runtime: Runtime,
        webhooks: super::WebhookOptions,
        fanout: Arc<dyn Fanout>,
    ) -> Self {
        Loader {
            store,
            runtime,
            webhooks,
            by_hash: Mutex::new(HashMap::new()),
            hash_of: Mutex::new(HashMap::new()),
            fanout,
        }
    }

    /// Forgets which content each version of `app` has (`None`: of every app); compiled
    /// components stay, keyed by content.
    pub(crate) fn forget(&self, app: Option<&str>) {
        if let Ok(mut map) = self.hash_of.lock() {
            match app {
                Some(app) => map.retain(|(a, _), _| a != app),
                None => map.clear(),
            }
        }
    }

    /// The runnable form of `app`@`version`.
    pub(crate) async fn get(&self, app: &str, version: &str) -> Result<Arc<Loaded>, ApiError> {
        let known = self
            .hash_of
            .lock()
            .ok()
            .and_then(|m| m.get(&(app.to_owned(), version.to_owned())).cloned());
        let hash = match known {
            Some(hash) => hash,
            None => {
                let (_, hash, _) = self
                    .store
                    .version_meta(app, version)
                    .await?
                    .ok_or(ApiError::NotFound("app version"))?;
                self.remember_hash(app, version, &hash);
                hash
            }
        };
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
        let loaded = self.compile(v.wasm).await.map_err(|e| match e {
            LoadError::Busy(_) => load_error(e),
            e => ApiError::Internal(format!(
                "stored component of {app}@{version} does not load: {e}"
            )),
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

    fn remember_hash(&self, app: &str, version: &str, hash: &str) {
        if let Ok(mut map) = self.hash_of.lock() {
            if map.len() >= MAX_CACHED * 16 {
                map.clear();
            }
            map.insert((app.to_owned(), version.to_owned()), hash.to_owned());
        }
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
        // Compiling is CPU work (and may wait for a compile slot): keep it off the async threads.
        tokio::task::spawn_blocking(move || runtime.load(&wasm))
            .await
            .unwrap_or_else(|e| Err(LoadError::Worker(format!("compile task: {e}"))))
    }

    /// Checks a manifest and its component, cheapest first: the manifest parses; the
    /// component's bytes (read, not compiled) are within the size limit and import nothing its
    /// manifest does not cover, no forbidden WASI and no other `minihost:app` version; only then
    /// is it compiled and linked against the world.
    pub(crate) async fn validate(
        &self,
        manifest_text: &str,
        component: &[u8],
    ) -> Result<(Manifest, Arc<LoadedApp>), ApiError> {
        let (manifest, app, _) = self.validate_inspected(manifest_text, component).await?;
        Ok((manifest, app))
    }

    /// [`Self::validate`], also answering what inspecting the component read.
    async fn validate_inspected(
        &self,
        manifest_text: &str,
        component: &[u8],
    ) -> Result<(Manifest, Arc<LoadedApp>, ComponentInfo), ApiError> {
        let manifest = minihost_manifest::parse(manifest_text).map_err(manifest_errors)?;
        if let Some(url) = &manifest.webhook {
            super::webhooks::check_url(url, &self.webhooks)
                .map_err(|why| invalid("manifest", format!("`webhook`: {why}")))?;
        }
        let info = self.inspect(component).await?;
        let findings =
            minihost_manifest::check_imports(info.imports.iter().map(String::as_str), &manifest);
        if !findings.is_empty() {
            let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
            return Err(invalid("component", text.join("; ")));
        }
        let app = self.compile(component.to_vec()).await.map_err(load_error)?;
        Ok((manifest, app, info))
    }

    /// Reads a component's imports and sizes without compiling it.
    async fn inspect(&self, component: &[u8]) -> Result<ComponentInfo, ApiError> {
        let max = self.runtime.config().max_component_bytes;
        if component.len() > max {
            return Err(load_error(LoadError::TooLarge {
                size: component.len(),
                max,
            }));
        }
        let bytes = component.to_vec();
        tokio::task::spawn_blocking(move || minihost_runtime::inspect(&bytes))
            .await
            .map_err(|e| ApiError::Internal(format!("inspect task: {e}")))?
            .map_err(|e| invalid("component", e.to_string()))
    }

    /// Validates a version (every blocking check), smoke-runs it, computes its findings
    /// against the released version, and stores it with `status`, `notes` and the findings.
    async fn store_version(
        &self,
        developer: &User,
        manifest_text: String,
        component: Vec<u8>,
        status: VersionStatus,
        notes: String,
    ) -> Result<Sideloaded, ApiError> {
        let (manifest, app, info) = self.validate_inspected(&manifest_text, &component).await?;
        let stored = async {
            let smoke = super::findings::smoke_run(&self.runtime, &app, &manifest).await?;
            let mut found = super::findings::checks_passed(
                &info.imports,
                component.len(),
                self.runtime.config().max_component_bytes,
                &smoke,
            );
            let released = self.released_manifest(manifest.id.as_str()).await?;
            found.extend(super::findings::diff(
                &manifest,
                released.as_ref().map(|(v, m)| (v.as_str(), m)),
            ));
            let stored = self
                .put(
                    developer,
                    manifest,
                    manifest_text,
                    component,
                    (status, &found, notes),
                    &app,
                )
                .await?;
            Ok::<_, ApiError>(Sideloaded {
                app: stored.0,
                version: stored.1,
                status: status.as_str().to_owned(),
                sha256: stored.2,
                findings: found,
            })
        };
        match stored.await {
            Ok(stored) => Ok(stored),
            Err(e) => {
                // Refused after compiling: the artefact this upload made must not stay in the
                // cache (one that was there before belongs to a version already stored).
                if app.origin() == LoadOrigin::Compiled
                    && let Err(io) = self.runtime.evict_cached(&app.content_hash())
                {
                    tracing::warn!(error = %io, "could not evict a refused version's artefact");
                }
                Err(e)
            }
        }
    }

    /// The released (stable) version of `app` and its manifest, if one is released.
    async fn released_manifest(&self, app: &str) -> Result<Option<(String, Manifest)>, ApiError> {
        let Some(version) = self.store.release(app).await?.stable else {
            return Ok(None);
        };
        let Some((text, _, _)) = self.store.version_meta(app, &version).await? else {
            return Ok(None);
        };
        let manifest = minihost_manifest::parse(&text).map_err(|e| {
            ApiError::Internal(format!("stored manifest of {app}@{version}: {e:?}"))
        })?;
        Ok(Some((version, manifest)))
    }

    /// Stores a validated version.
    async fn put(
        &self,
        developer: &User,
        manifest: Manifest,
        manifest_text: String,
        component: Vec<u8>,
        (status, findings, notes): (VersionStatus, &[minihost_api::Finding], String),
        app: &Arc<LoadedApp>,
    ) -> Result<(String, String, String), ApiError> {
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
                findings: serde_json::to_string(findings)
                    .map_err(|e| ApiError::Internal(format!("findings: {e}")))?,
                notes,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ApiError::Conflict(format!(
                    "{id}@{version} was submitted for review and cannot change (versions are immutable); bump the version"
                )),
                other => other.into(),
            })?;
        // Before remembering: the invalidation reaches this node's listeners too.
        self.fanout
            .invalidate(Invalidation::AppChanged { app: id.clone() });
        self.remember_hash(&id, &version, &hash);
        if let Ok(mut map) = self.by_hash.lock() {
            map.insert(
                hash.clone(),
                Arc::new(Loaded {
                    manifest,
                    app: app.clone(),
                }),
            );
        }
        Ok((id, version, hash))
    }

    /// Validates and installs a developer's version in trial in a group they own.
    pub(crate) async fn sideload(
        &self,
        developer: &User,
        conversation: &Conversation,
        manifest_text: String,
        component: Vec<u8>,
    ) -> Result<Sideloaded, ApiError> {
        let done = self
            .store_version(
                developer,
                manifest_text,
                component,
                VersionStatus::Trial,
                String::new(),
            )
            .await?;
        self.store
            .install(
                &conversation.id,
                &done.app,
                &done.version,
                &developer.id,
                true,
            )
            .await?;
        self.installs_changed(&conversation.id);
        Ok(done)
    }

    /// Validates a version and queues it for review, with the developer's `notes`. Nothing is
    /// stored when `app` is not the manifest's id.
    pub(crate) async fn submit(
        &self,
        developer: &User,
        app: &str,
        manifest_text: String,
        component: Vec<u8>,
        notes: String,
    ) -> Result<Sideloaded, ApiError> {
        let manifest = minihost_manifest::parse(&manifest_text).map_err(manifest_errors)?;
        if manifest.id.as_str() != app {
            return Err(invalid(
                "manifest",
                format!(
                    "the manifest's id is {:?}, not {app:?}",
                    manifest.id.as_str()
                ),
            ));
        }
        self.store_version(
            developer,
            manifest_text,
            component,
            VersionStatus::Submitted,
            notes,
        )
        .await
    }

    /// Installs `app` in a conversation: what runs there for each user is decided by the app's
    /// release at every event. Refused while nothing of it is released.
    pub(crate) async fn install(
        &self,
        user: &User,
        conversation: &Conversation,
        app: &str,
    ) -> Result<Sideloaded, ApiError> {
        let release = self.store.release(app).await?;
        let stable = release
            .stable
            .ok_or(ApiError::NotFound("released version of that app"))?;
        if self.store.suspension(app).await?.is_some() {
            return Err(ApiError::Conflict("the app is suspended".into()));
        }
        // Load it now, so the first event does not pay for compiling.
        self.get(app, &stable).await?;
        self.store
            .install(&conversation.id, app, &stable, &user.id, false)
            .await?;
        self.installs_changed(&conversation.id);
        let sha256 = self
            .store
            .version_meta(app, &stable)
            .await?
            .map(|(_, hash, _)| hash)
            .unwrap_or_default();
        Ok(Sideloaded {
            app: app.to_owned(),
            version: stable,
            status: "released".to_owned(),
            sha256,
            findings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_manifest_check_and_the_runtime_agree_on_the_platform_version() {
        let suffix = format!("@{}", minihost_manifest::PLATFORM_VERSION);
        for interface in minihost_runtime::Interface::ALL {
            assert!(interface.qualified_name().ends_with(&suffix), "{interface}");
        }
    }
}
