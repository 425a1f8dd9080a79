//! The operator's settings of `minihost serve`: every limit, budget and default the server
//! takes, from one TOML file (`--config FILE` or `MINIHOST_CONFIG`), every key also from the
//! environment as `MINIHOST_<SECTION>_<KEY>` (e.g. `MINIHOST_SANDBOX_MAX_APP_TIMEOUT_MS=1500`),
//! and the command-line flags of `serve` over both. A key the file does not name keeps its
//! default; an unknown key or a value of the wrong type is an error naming it.
//! `minihost config show` prints the effective values (the database URL's password redacted).
//!
//! Sections: `[api]`, `[throttle]`, `[connections]`, `[sandbox]`, `[compile]`, `[webhooks]`,
//! `[apps]` (send budgets, storage quotas, timers), `[retention]`.
//!
//! Durations are integers with their unit in the key's name (`_ms`, `_secs`); sizes likewise
//! (`_bytes`, `_mib`). `0` means "chosen by the server" where a key says so.

use anyhow::{Context, bail};
use minihost::AppLimits;
use minihost::platform::{RetentionOptions, WebhookOptions};
use minihost_api::{ApiConfig, ConnectionLimits, ThrottleLimits};
use minihost_runtime::{ExecutorConfig, FastLane, Limits};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Every section of the settings file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The HTTP and WebSocket API.
    pub api: ApiSettings,
    /// The mini-app sandboxes and their scheduling.
    pub sandbox: SandboxSettings,
    /// Compiling uploaded components, and the compiled-component cache.
    pub compile: CompileSettings,
    /// Payment webhooks to app backends.
    pub webhooks: WebhookSettings,
    /// What apps may do: send budgets, storage quotas, timers.
    pub apps: AppSettings,
    /// How long and how much of the invocation log and the privacy record is kept.
    pub retention: RetentionSettings,
    /// Throttles on sign-in, sign-up and secret checks, and the cap on hashes at once.
    pub throttle: ThrottleSettings,
    /// Timeouts of connections and requests.
    pub connections: ConnectionSettings,
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// How long a sign-in session lasts. Default 2,592,000 (30 days).
    pub session_ttl_secs: u64,
    /// WebSocket read buffer per connection. Default 4,096.
    pub ws_read_buffer_bytes: usize,
    /// Largest WebSocket message accepted from a client. Default 65,536.
    pub ws_max_message_bytes: usize,
    /// Frames per second a WebSocket client may send on average. Default 20.
    pub ws_frames_per_second: u32,
    /// Frames a WebSocket client may send in a burst. Default 60.
    pub ws_frame_burst: u32,
    /// How often an open WebSocket re-checks its session for revocations made elsewhere.
    /// Default 60.
    pub ws_session_check_secs: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        let d = ApiConfig::default();
        ApiSettings {
            session_ttl_secs: d.session_ttl.as_secs(),
            ws_read_buffer_bytes: d.ws_read_buffer,
            ws_max_message_bytes: d.ws_max_message,
            ws_frames_per_second: d.ws_frames_per_second,
            ws_frame_burst: d.ws_frame_burst,
            ws_session_check_secs: d.ws_session_check.as_secs(),
        }
    }
}

/// `[throttle]` (each field as documented on `minihost_api::ThrottleLimits`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Failed sign-ins one account may take in a burst. Default 10.
    pub sign_in_account_burst: u32,
    /// Seconds for one more failed sign-in per account. Default 30.
    pub sign_in_account_refill_secs: u64,
    /// Failed sign-ins one client address may make in a burst. Default 30.
    pub sign_in_address_burst: u32,
    /// Seconds for one more failed sign-in per address. Default 2.
    pub sign_in_address_refill_secs: u64,
    /// Sign-ups one client address may make in a burst. Default 20.
    pub sign_up_address_burst: u32,
    /// Seconds for one more sign-up per address. Default 10.
    pub sign_up_address_refill_secs: u64,
    /// Wrong PINs and password re-checks one user may make in a burst. Default 10.
    pub secret_check_user_burst: u32,
    /// Seconds for one more per user. Default 30.
    pub secret_check_user_refill_secs: u64,
    /// Wrong PINs and password re-checks one address may make in a burst. Default 30.
    pub secret_check_address_burst: u32,
    /// Seconds for one more per address. Default 2.
    pub secret_check_address_refill_secs: u64,
    /// Keys each throttle remembers; beyond, new keys are refused. Default 100,000.
    pub max_tracked_keys: usize,
    /// Client addresses never throttled (`--throttle-exempt`). Default none.
    pub exempt: Vec<std::net::IpAddr>,
    /// argon2 hashes running at once. Default 0: one per core, at least 2.
    pub max_concurrent_hashes: usize,
    /// Requests waiting for a hash slot; beyond, `503 busy`. Default 256.
    pub max_waiting_hashes: usize,
    /// The longest wait for a hash slot. Default 5.
    pub hash_wait_secs: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        let d = ThrottleLimits::default();
        ThrottleSettings {
            sign_in_account_burst: d.sign_in_account_burst,
            sign_in_account_refill_secs: d.sign_in_account_refill.as_secs(),
            sign_in_address_burst: d.sign_in_address_burst,
            sign_in_address_refill_secs: d.sign_in_address_refill.as_secs(),
            sign_up_address_burst: d.sign_up_address_burst,
            sign_up_address_refill_secs: d.sign_up_address_refill.as_secs(),
            secret_check_user_burst: d.secret_check_user_burst,
            secret_check_user_refill_secs: d.secret_check_user_refill.as_secs(),
            secret_check_address_burst: d.secret_check_address_burst,
            secret_check_address_refill_secs: d.secret_check_address_refill.as_secs(),
            max_tracked_keys: d.max_tracked_keys,
            exempt: d.exempt,
            max_concurrent_hashes: 0,
            max_waiting_hashes: d.max_waiting_hashes,
            hash_wait_secs: d.hash_wait.as_secs(),
        }
    }
}

/// `[connections]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionSettings {
    /// How long a connection may take to send a request's headers (a silent new connection, a
    /// slow-loris, an idle keep-alive one are closed after it). Default 10.
    pub header_read_timeout_secs: u64,
    /// How long a request may take, its body included, before `408`. Default 120.
    pub request_timeout_secs: u64,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        let d = ConnectionLimits::default();
        ConnectionSettings {
            header_read_timeout_secs: d.header_read_timeout.as_secs(),
            request_timeout_secs: d.request_timeout.as_secs(),
        }
    }
}

/// How guest threads yield to the messenger's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GuestPriority {
    /// Linux `SCHED_IDLE` and nice 10: guests run only on cores nothing else wants.
    Idle,
    /// nice 10 only: guests keep a small share under any load.
    Low,
}

/// `[sandbox]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    /// Threads that run mini-apps. Default 0: half the cores, at least one.
    pub guest_threads: usize,
    /// Invocations running at once. Default 0: two per guest thread.
    pub guest_slots: usize,
    /// `idle` or `low` (see `serve --help`). Default `idle`.
    pub guest_priority: GuestPriority,
    /// Share of one core that short invocations may use on the fast lane, a guest thread at
    /// chat's own priority where each invocation spends its first 5 ms of running time (0
    /// turns the lane off: every invocation waits for the `guest_priority` threads). Default
    /// 0.25 (BENCHMARKS.md, "App commands off the read pool, and a fast lane for short
    /// invocations").
    pub guest_fast_share: f64,
    /// The longest time budget any app gets, whatever its manifest asks. Default 2,000.
    pub max_app_timeout_ms: u64,
    /// Fuel (about one unit per wasm instruction) per millisecond of an app's time budget: the
    /// bound on an invocation's work when the epoch thread that enforces deadlines is starved.
    /// Default 40,000,000 (see BENCHMARKS.md, "Fuel").
    pub fuel_per_ms: u64,
    /// Capability calls one invocation may make. Default 1,000.
    pub max_calls: u32,
    /// Invocations waiting for a slot over all apps; more are refused as busy. Default 256.
    pub max_queued: usize,
    /// Invocations of one app waiting for a slot. Default 16.
    pub max_queued_per_app: usize,
    /// Invocations of one developer's apps waiting for a slot. Default 32.
    pub max_queued_per_owner: usize,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        let e = ExecutorConfig::default();
        SandboxSettings {
            guest_threads: 0,
            guest_slots: 0,
            guest_priority: GuestPriority::Idle,
            guest_fast_share: e.fast_lane.map_or(0.0, |l| l.share),
            max_app_timeout_ms: 2_000,
            fuel_per_ms: minihost_runtime::FUEL_PER_MS,
            max_calls: Limits::default().max_calls,
            max_queued: e.max_queued,
            max_queued_per_app: e.max_queued_per_app,
            max_queued_per_owner: e.max_queued_per_owner,
        }
    }
}

/// `[compile]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompileSettings {
    /// Components compiled at once. Default 0: one per two cores.
    pub concurrency: usize,
    /// Seconds one compile may take (also its CPU-time limit and the longest wait for a slot).
    /// Default 60.
    pub timeout_secs: u64,
    /// Address space of a compile worker. Default 2,048.
    pub memory_mib: u64,
    /// Compile in the server process (no time or memory bound; debugging only). Default false.
    pub in_process: bool,
    /// Compiled components kept in the data directory's cache. Default 512.
    pub cache_mib: u64,
}

impl Default for CompileSettings {
    fn default() -> Self {
        CompileSettings {
            concurrency: 0,
            timeout_secs: 60,
            memory_mib: 2_048,
            in_process: false,
            cache_mib: minihost_runtime::DEFAULT_CACHE_MAX_BYTES >> 20,
        }
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Development mode: plain http to this machine's loopback allowed. Never in production.
    /// Default false.
    pub dev: bool,
    /// Webhooks may reach private, link-local and loopback addresses. Default false.
    pub allow_private: bool,
    /// The wait before the first retry; each further one waits twice as long. Default 1,000.
    pub backoff_base_ms: u64,
    /// The longest wait between retries. Default 3,600,000 (one hour).
    pub backoff_cap_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let d = WebhookOptions::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        WebhookSettings {
            dev: d.dev,
            allow_private: d.allow_private,
            backoff_base_ms: ms(d.backoff_base),
            backoff_cap_ms: ms(d.backoff_cap),
        }
    }
}

/// `[apps]`: the app services' limits (each field as documented on `minihost::AppLimits`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSettings {
    /// Replies an app may send in a burst to one user's own events in one conversation.
    /// Default 20.
    pub reply_burst: i64,
    /// Replies per minute that burst refills at, per user and conversation. Default 60.
    pub replies_per_minute: i64,
    /// Unsolicited messages (timers, payment events, the backend) per conversation in a burst.
    /// Default 20.
    pub unsolicited_burst: i64,
    /// Unsolicited messages per minute that burst refills at, per conversation. Default 60.
    pub unsolicited_per_minute: i64,
    /// Storage keys per owner (the app's bucket or one user's). Default 1,000.
    pub storage_keys: i64,
    /// Storage bytes (keys + values) per owner. Default 1,048,576.
    pub storage_bytes: i64,
    /// Longest storage key. Default 256.
    pub max_key_bytes: usize,
    /// Largest storage value. Default 65,536.
    pub max_value_bytes: usize,
    /// Longest delay of an app timer. Default 604,800 (seven days).
    pub max_timer_delay_secs: u32,
    /// Pending timers per app. Default 1,000.
    pub max_pending_timers: i64,
}

impl Default for AppSettings {
    fn default() -> Self {
        let d = AppLimits::default();
        AppSettings {
            reply_burst: d.reply_burst,
            replies_per_minute: d.replies_per_minute,
            unsolicited_burst: d.unsolicited_burst,
            unsolicited_per_minute: d.unsolicited_per_minute,
            storage_keys: d.storage_keys,
            storage_bytes: d.storage_bytes,
            max_key_bytes: d.max_key_bytes,
            max_value_bytes: d.max_value_bytes,
            max_timer_delay_secs: d.max_timer_delay_secs,
            max_pending_timers: d.max_pending_timers,
        }
    }
}

/// `[retention]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Invocation log entries older than this are deleted. Default 30.
    pub invocations_max_age_days: u64,
    /// Invocation log entries kept per app, newest first. Default 10,000.
    pub invocations_per_app: u32,
    /// Privacy record lines older than this are deleted. Default 30.
    pub privacy_max_age_days: u64,
    /// Privacy record lines kept per user, newest first. Default 10,000.
    pub privacy_per_user: u32,
    /// How often the records are pruned. Default 600.
    pub every_secs: u64,
}

const DAY: u64 = 24 * 3600;

impl Default for RetentionSettings {
    fn default() -> Self {
        let d = RetentionOptions::default();
        RetentionSettings {
            invocations_max_age_days: d.invocations_max_age.as_secs() / DAY,
            invocations_per_app: d.invocations_per_app,
            privacy_max_age_days: d.privacy_max_age.as_secs() / DAY,
            privacy_per_user: d.privacy_per_user,
            every_secs: d.every.as_secs(),
        }
    }
}

/// The prefix of every settings variable in the environment.
const ENV_PREFIX: &str = "MINIHOST_";

impl Settings {
    /// Defaults, then `file` (if any), then the environment's `MINIHOST_<SECTION>_<KEY>`.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let text = match file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the settings file {}", path.display()))?,
            None => String::new(),
        };
        let origin = file.map_or_else(|| "(no file)".to_owned(), |p| p.display().to_string());
        Settings::from_sources(&text, &origin, |name| std::env::var(name).ok())
    }

    /// [`Settings::load`] with the file's text and the environment given.
    pub fn from_sources(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Settings> {
        let from_file: Settings =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let mut table = toml::Table::try_from(&from_file).context("settings as a table")?;
        for (section, keys) in table.iter_mut() {
            let Some(keys) = keys.as_table_mut() else {
                continue;
            };
            for (key, value) in keys.iter_mut() {
                let name = format!("{ENV_PREFIX}{section}_{key}").to_uppercase();
                if let Some(raw) = env(&name) {
                    *value = env_value(value, &raw).with_context(|| format!("{name}={raw:?}"))?;
                }
            }
        }
        table
            .try_into()
            .map_err(|e| anyhow::anyhow!("the environment's settings: {e}"))
    }

    /// The settings as the TOML file that would give them.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string(self).context("writing the settings as TOML")
    }

    /// The API configuration these settings give.
    pub fn api_config(&self) -> ApiConfig {
        let a = &self.api;
        ApiConfig {
            session_ttl: Duration::from_secs(a.session_ttl_secs.max(1)),
            ws_read_buffer: a.ws_read_buffer_bytes.max(256),
            ws_max_message: a.ws_max_message_bytes.max(1024),
            ws_frames_per_second: a.ws_frames_per_second.max(1),
            ws_frame_burst: a.ws_frame_burst.max(1),
            ws_session_check: Duration::from_secs(a.ws_session_check_secs.max(1)),
            throttle: self.throttle_limits(),
            connections: ConnectionLimits {
                header_read_timeout: secs(self.connections.header_read_timeout_secs),
                request_timeout: secs(self.connections.request_timeout_secs),
            },
        }
    }

    fn throttle_limits(&self) -> ThrottleLimits {
        let t = &self.throttle;
        let d = ThrottleLimits::default();
        ThrottleLimits {
            sign_in_account_burst: t.sign_in_account_burst.max(1),
            sign_in_account_refill: secs(t.sign_in_account_refill_secs),
            sign_in_address_burst: t.sign_in_address_burst.max(1),
            sign_in_address_refill: secs(t.sign_in_address_refill_secs),
            sign_up_address_burst: t.sign_up_address_burst.max(1),
            sign_up_address_refill: secs(t.sign_up_address_refill_secs),
            secret_check_user_burst: t.secret_check_user_burst.max(1),
            secret_check_user_refill: secs(t.secret_check_user_refill_secs),
            secret_check_address_burst: t.secret_check_address_burst.max(1),
            secret_check_address_refill: secs(t.secret_check_address_refill_secs),
            max_tracked_keys: t.max_tracked_keys.max(1),
            exempt: t.exempt.clone(),
            max_concurrent_hashes: if t.max_concurrent_hashes > 0 {
                t.max_concurrent_hashes
            } else {
                d.max_concurrent_hashes
            },
            max_waiting_hashes: t.max_waiting_hashes,
            hash_wait: secs(t.hash_wait_secs),
        }
    }

    /// The guest executor these settings give.
    pub fn executor(&self) -> ExecutorConfig {
        let s = &self.sandbox;
        let mut c = ExecutorConfig {
            idle_class: s.guest_priority == GuestPriority::Idle,
            max_queued: s.max_queued.max(1),
            max_queued_per_app: s.max_queued_per_app.max(1),
            max_queued_per_owner: s.max_queued_per_owner.max(1),
            fast_lane: (s.guest_fast_share > 0.0).then(|| FastLane {
                share: s.guest_fast_share.min(1.0),
                ..FastLane::default()
            }),
            ..ExecutorConfig::default()
        };
        if s.guest_threads > 0 {
            c.threads = s.guest_threads;
            c.max_running = c.threads * 2;
        }
        if s.guest_slots > 0 {
            c.max_running = s.guest_slots;
        }
        c.max_running_per_app = (c.max_running / 2).max(1);
        c.max_running_per_owner = (c.max_running / 2).max(1);
        c
    }

    /// The per-invocation bounds these settings give (an app's manifest sets its own memory
    /// and time within the operator's caps; fuel follows its time budget).
    pub fn limits(&self) -> Limits {
        let defaults = Limits::default();
        Limits {
            max_calls: self.sandbox.max_calls.max(1),
            ..defaults.with_fuel_per_ms(self.sandbox.fuel_per_ms.max(1))
        }
    }

    /// The app services' limits these settings give.
    pub fn app_limits(&self) -> AppLimits {
        let a = &self.apps;
        AppLimits {
            reply_burst: a.reply_burst.max(1),
            replies_per_minute: a.replies_per_minute.max(1),
            unsolicited_burst: a.unsolicited_burst.max(1),
            unsolicited_per_minute: a.unsolicited_per_minute.max(1),
            storage_keys: a.storage_keys.max(0),
            storage_bytes: a.storage_bytes.max(0),
            max_key_bytes: a.max_key_bytes.max(1),
            max_value_bytes: a.max_value_bytes,
            max_timer_delay_secs: a.max_timer_delay_secs.max(1),
            max_pending_timers: a.max_pending_timers.max(0),
        }
    }

    /// The retention these settings give.
    pub fn retention(&self) -> RetentionOptions {
        let r = &self.retention;
        RetentionOptions {
            invocations_max_age: Duration::from_secs(r.invocations_max_age_days.max(1) * DAY),
            invocations_per_app: r.invocations_per_app.max(1),
            privacy_max_age: Duration::from_secs(r.privacy_max_age_days.max(1) * DAY),
            privacy_per_user: r.privacy_per_user.max(1),
            every: Duration::from_secs(r.every_secs.max(1)),
        }
    }

    /// The webhook options these settings give.
    pub fn webhooks(&self) -> WebhookOptions {
        let w = &self.webhooks;
        WebhookOptions {
            dev: w.dev,
            allow_private: w.allow_private,
            backoff_base: Duration::from_millis(w.backoff_base_ms.max(1)),
            backoff_cap: Duration::from_millis(w.backoff_cap_ms.max(w.backoff_base_ms).max(1)),
        }
    }
}

/// `n` seconds, at least one.
fn secs(n: u64) -> Duration {
    Duration::from_secs(n.max(1))
}

/// An environment variable's text as a value of the same kind as `like`: numbers and booleans
/// parsed, anything else taken as a string.
fn env_value(like: &toml::Value, raw: &str) -> anyhow::Result<toml::Value> {
    Ok(match like {
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .replace('_', "")
                .parse()
                .context("not an integer")?,
        ),
        toml::Value::Boolean(_) => match raw.trim() {
            "true" | "1" | "yes" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "" => toml::Value::Boolean(false),
            _ => bail!("not a boolean (true or false)"),
        },
        toml::Value::Float(_) => toml::Value::Float(raw.trim().parse().context("not a number")?),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| toml::Value::String(v.to_owned()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn an_empty_file_gives_the_defaults_and_they_round_trip() {
        let s = Settings::from_sources("", "test", no_env).unwrap();
        assert_eq!(s, Settings::default());
        let again = Settings::from_sources(&s.to_toml().unwrap(), "shown", no_env).unwrap();
        assert_eq!(again, s);
        let api = s.api_config();
        assert_eq!(api.session_ttl, ApiConfig::default().session_ttl);
        assert_eq!(api.throttle, ThrottleLimits::default());
        assert_eq!(api.connections, ConnectionLimits::default());
        assert_eq!(s.limits().fuel, Limits::default().fuel);
        assert_eq!(s.app_limits(), AppLimits::default());
        assert_eq!(s.retention(), RetentionOptions::default());
    }

    #[test]
    fn the_file_then_the_environment_set_values() {
        let file = "[sandbox]\nmax_app_timeout_ms = 1500\nguest_priority = \"low\"\n\
                    [webhooks]\ndev = true\n";
        let env = |name: &str| match name {
            "MINIHOST_SANDBOX_MAX_APP_TIMEOUT_MS" => Some("900".to_owned()),
            "MINIHOST_API_WS_FRAME_BURST" => Some("5".to_owned()),
            "MINIHOST_THROTTLE_EXEMPT" => Some("127.0.0.1, ::1".to_owned()),
            _ => None,
        };
        let s = Settings::from_sources(file, "test", env).unwrap();
        assert_eq!(s.sandbox.max_app_timeout_ms, 900);
        assert_eq!(s.sandbox.guest_priority, GuestPriority::Low);
        assert!(s.webhooks.dev);
        assert_eq!(s.api.ws_frame_burst, 5);
        assert!(!s.executor().idle_class);
        assert_eq!(s.api_config().throttle.exempt.len(), 2);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_named() {
        let e = Settings::from_sources("[sandbox]\nmax_app_timeot_ms = 1\n", "f.toml", no_env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.toml") && e.contains("max_app_timeot_ms"),
            "{e}"
        );
        let e = Settings::from_sources("[api]\nws_frame_burst = \"many\"\n", "f.toml", no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ws_frame_burst"), "{e}");
        let env = |name: &str| (name == "MINIHOST_COMPILE_TIMEOUT_SECS").then(|| "soon".to_owned());
        let e = format!("{:#}", Settings::from_sources("", "f", env).unwrap_err());
        assert!(e.contains("MINIHOST_COMPILE_TIMEOUT_SECS"), "{e}");
    }
}
