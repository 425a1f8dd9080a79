//! The people, the place and the uploads of a dev session, all through the server's HTTP API
//! as any client: the developer's session, a test user (signed up here) who is one of the app's
//! testers, a group the test user owns with the developer in it, and each build published as a
//! new version (versions are immutable: `VERSION-dev.N`, N one more than any earlier upload of
//! this base version), put in trial in that group by the test user (a trial runs only for
//! whoever installed it), and the version it replaces withdrawn from the review queue.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::remote::{Answer, request};

/// Times an upload refused as busy (its smoke run got no CPU) is tried again.
const BUSY_RETRIES: u32 = 5;

/// A signed-in account.
pub(super) struct Account {
    pub username: String,
    /// The password, when this session made the account (and may print it).
    pub password: Option<String>,
    pub token: String,
}

/// A dev session on one server.
pub(super) struct DevSession {
    http: reqwest::Client,
    server: String,
    /// The developer, who publishes and reads the invocation log.
    pub developer: Account,
    /// The test user, who owns the group and chats with the app.
    pub tester: Account,
    /// The group's id.
    pub group: String,
    /// The group's title.
    pub group_title: String,
    app: String,
    next: u64,
    tester_added: bool,
    /// The version in trial now.
    pub current: Option<String>,
}

/// What an upload did.
pub(super) struct Uploaded {
    /// The version it became.
    pub version: String,
    /// The upload checks' findings other than `passed` (a manifest's changes against the
    /// release), as `check result: message` lines.
    pub findings: Vec<String>,
}

/// Signs `username` in; the session token.
pub(super) async fn sign_in(
    http: &reqwest::Client,
    server: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let body = json!({"username": username, "password": password});
    let answer = request(
        http,
        server,
        None,
        Method::POST,
        "/api/v1/sessions",
        Some(&body),
    )
    .await?
    .ok()
    .with_context(|| format!("signing in as {username}"))?;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .context("the server answered a sign-in with no token")
}

impl DevSession {
    /// Signs up and in the test user `tester`, makes the group (titled after the app), and
    /// finds the next dev version number of `manifest`'s version.
    pub async fn open(
        http: reqwest::Client,
        server: &str,
        developer: Account,
        tester: &str,
        manifest: &minihost_manifest::Manifest,
    ) -> anyhow::Result<DevSession> {
        let password = minihost_core::ids::random_hex(8);
        let body = json!({"username": tester, "display_name": "Test user", "password": password});
        request(
            &http,
            server,
            None,
            Method::POST,
            "/api/v1/accounts",
            Some(&body),
        )
        .await?
        .ok()
        .with_context(|| format!("signing up the test user {tester}"))?;
        let token = sign_in(&http, server, tester, &password).await?;
        let tester = Account {
            username: tester.to_owned(),
            password: Some(password),
            token,
        };
        let group_title = format!("{} (dev)", manifest.name);
        let body = json!({"kind": "group", "title": group_title, "members": [developer.username]});
        let group = request(
            &http,
            server,
            Some(&tester.token),
            Method::POST,
            "/api/v1/conversations",
            Some(&body),
        )
        .await?
        .ok()
        .context("making the group")?["id"]
            .as_str()
            .map(str::to_owned)
            .context("the server answered no group id")?;
        let app = manifest.id.as_str().to_owned();
        let mut session = DevSession {
            http,
            server: server.to_owned(),
            developer,
            tester,
            group,
            group_title,
            app,
            next: 1,
            tester_added: false,
            current: None,
        };
        session.next = session.next_dev_number(&manifest.version).await?;
        Ok(session)
    }

    /// The app's id.
    pub fn app(&self) -> &str {
        &self.app
    }

    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        request(&self.http, &self.server, Some(token), method, path, body).await
    }

    /// One more than the highest `N` of the app's `BASE-dev.N` versions (1 for a new app).
    async fn next_dev_number(&self, base: &semver::Version) -> anyhow::Result<u64> {
        let answer = self
            .call(
                &self.developer.token,
                Method::GET,
                &format!("/api/v1/apps/{}/versions", self.app),
                None,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(1);
        }
        let body = answer.ok().context("reading the app's versions")?;
        let versions = body["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["version"].as_str());
        Ok(highest_dev_number(base, versions) + 1)
    }

    /// Publishes `manifest_text` (its version replaced by the next dev version) with
    /// `component`, puts that version in trial in the group, and withdraws the one it replaces.
    pub async fn upload(
        &mut self,
        manifest_text: &str,
        component: &[u8],
    ) -> anyhow::Result<Uploaded> {
        use base64::Engine as _;
        let manifest = minihost_manifest::parse(manifest_text)
            .map_err(|e| anyhow!("miniapp.toml is not valid: {e}"))?;
        if manifest.id.as_str() != self.app {
            bail!(
                "miniapp.toml's id changed from {:?} to {:?}: restart `minihost app dev`",
                self.app,
                manifest.id.as_str()
            );
        }
        let component = base64::engine::general_purpose::STANDARD.encode(component);
        let mut tries = 0;
        let (version, answer) = loop {
            let version = dev_version(&manifest.version, self.next)?;
            let text = with_version(manifest_text, &version)
                .context("miniapp.toml has no top-level `version = \"...\"` line to set")?;
            let body = json!({
                "manifest": text,
                "component": component,
                "notes": "An upload of `minihost app dev`, tried in a test group.",
            });
            let answer = self.publish(&body).await?;
            self.next += 1;
            tries += 1;
            // Another session took this number meanwhile: take the next.
            let taken =
                answer.status == StatusCode::CONFLICT && answer.message().contains("immutable");
            if !taken || tries >= 5 {
                break (version, answer);
            }
        };
        let published = answer.ok()?;
        let findings = published["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["result"] != "passed")
            .map(|f| {
                format!(
                    "{} {}: {}",
                    f["check"].as_str().unwrap_or("?"),
                    f["result"].as_str().unwrap_or("?"),
                    f["message"].as_str().unwrap_or("")
                )
            })
            .collect();
        let version = version.to_string();
        if !self.tester_added {
            let path = format!("/api/v1/apps/{}/testers/{}", self.app, self.tester.username);
            self.call(&self.developer.token, Method::PUT, &path, None)
                .await?
                .ok()
                .context("adding the test user to the app's testers")?;
            self.tester_added = true;
        }
        let path = format!(
            "/api/v1/conversations/{}/apps/{}/trial",
            self.group, self.app
        );
        let body = json!({ "version": version });
        self.call(&self.tester.token, Method::PUT, &path, Some(&body))
            .await?
            .ok()
            .with_context(|| format!("installing {}@{version} in trial", self.app))?;
        if let Some(previous) = self.current.replace(version.clone()) {
            self.withdraw(&previous).await;
        }
        Ok(Uploaded { version, findings })
    }

    /// Publishes a version, trying again while the server answers busy.
    async fn publish(&self, body: &Value) -> anyhow::Result<Answer> {
        let path = format!("/api/v1/apps/{}/versions", self.app);
        let mut tries = 0;
        loop {
            let answer = self
                .call(&self.developer.token, Method::POST, &path, Some(body))
                .await?;
            tries += 1;
            if answer.status != StatusCode::SERVICE_UNAVAILABLE || tries > BUSY_RETRIES {
                return Ok(answer);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Takes `version` out of the review queue (a dev upload is not for reviewers); a failure
    /// is only reported.
    pub async fn withdraw(&self, version: &str) {
        let path = format!("/api/v1/apps/{}/versions/{version}/withdraw", self.app);
        let done = self
            .call(&self.developer.token, Method::POST, &path, None)
            .await
            .and_then(Answer::ok);
        if let Err(e) = done {
            eprintln!(
                "warning: could not withdraw {}@{version} from review: {e:#}",
                self.app
            );
        }
    }

    /// The app's invocation log, newest first (at most `limit` entries); `None` while the app
    /// does not exist yet.
    pub async fn invocations(&self, limit: u32) -> anyhow::Result<Option<Vec<Value>>> {
        let path = format!("/api/v1/apps/{}/invocations?limit={limit}", self.app);
        let answer = self
            .call(&self.developer.token, Method::GET, &path, None)
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        match answer.ok()? {
            Value::Array(list) => Ok(Some(list)),
            other => bail!("the invocation log is not a list: {other}"),
        }
    }
}

/// `base` with `dev.N` added to its pre-release (`1.2.0` → `1.2.0-dev.3`, `1.2.0-beta` →
/// `1.2.0-beta.dev.3`), without build metadata.
pub(super) fn dev_version(base: &semver::Version, n: u64) -> anyhow::Result<semver::Version> {
    let pre = if base.pre.is_empty() {
        format!("dev.{n}")
    } else {
        format!("{}.dev.{n}", base.pre)
    };
    Ok(semver::Version {
        pre: semver::Prerelease::new(&pre).with_context(|| format!("pre-release {pre:?}"))?,
        build: semver::BuildMetadata::EMPTY,
        ..base.clone()
    })
}

/// The highest `N` among `versions` of the form `dev_version(base, N)`; 0 when none is.
pub(super) fn highest_dev_number<'a>(
    base: &semver::Version,
    versions: impl Iterator<Item = &'a str>,
) -> u64 {
    let Ok(zero) = dev_version(base, 0) else {
        return 0;
    };
    let zero = zero.to_string();
    let prefix = zero.strip_suffix('0').unwrap_or(&zero);
    versions
        .filter_map(|v| v.strip_prefix(prefix)?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// `text` with its top-level `version = "..."` line (before any table) set to `version`;
/// `None` when there is no such line.
pub(super) fn with_version(text: &str, version: &semver::Version) -> Option<String> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            // Tables start here: a `version` below belongs to one of them.
            return None;
        }
        let is_version = trimmed
            .strip_prefix("version")
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if is_version {
            let ending = if line.ends_with("\r\n") {
                "\r\n"
            } else if line.ends_with('\n') {
                "\n"
            } else {
                ""
            };
            return Some(format!(
                "{}version = \"{version}\"{ending}{}",
                &text[..offset],
                &text[offset + line.len()..]
            ));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    #[test]
    fn dev_versions_count_up_from_the_manifests_version() {
        assert_eq!(dev_version(&v("0.1.0"), 3).unwrap(), v("0.1.0-dev.3"));
        assert_eq!(
            dev_version(&v("1.2.0-beta+abc"), 1).unwrap(),
            v("1.2.0-beta.dev.1")
        );
        let uploaded = [
            "0.1.0",
            "0.1.0-dev.2",
            "0.1.0-dev.10",
            "0.2.0-dev.40",
            "0.1.0-dev.x",
        ];
        assert_eq!(highest_dev_number(&v("0.1.0"), uploaded.into_iter()), 10);
        assert_eq!(highest_dev_number(&v("0.3.0"), uploaded.into_iter()), 0);
    }

    #[test]
    fn the_top_level_version_is_replaced_and_nothing_else() {
        let text = "# My app\nid = \"demo\"\nversion  =  \"0.1.0\" # bumped by hand\nname = \"Demo\"\n\n[limits]\nversion = 1\n";
        let out = with_version(text, &v("0.1.0-dev.2")).unwrap();
        assert_eq!(
            out,
            "# My app\nid = \"demo\"\nversion = \"0.1.0-dev.2\"\nname = \"Demo\"\n\n[limits]\nversion = 1\n"
        );
        // The CRLF of a file saved on Windows is kept.
        assert_eq!(
            with_version("id = \"a\"\r\nversion = \"1.0.0\"\r\n", &v("1.0.0-dev.1")).unwrap(),
            "id = \"a\"\r\nversion = \"1.0.0-dev.1\"\r\n"
        );
        // Only a table has one: nothing to replace.
        assert_eq!(with_version("[limits]\nversion = 1\n", &v("1.0.0")), None);
        assert_eq!(with_version("versions = 2\n", &v("1.0.0")), None);
    }
}
