//! Signed webhooks to app backends: the operator's URL policy (checked when a manifest is
//! accepted and again, after resolving DNS, before every send), the body of a payment event's
//! webhook, and the sender task that POSTs due deliveries from the store's outbox with a
//! `Minihost-Signature: t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` header and
//! records each outcome (retried with exponential backoff until a 2xx). Everything it needs is in
//! the store, so deliveries survive restarts and any node may send them.

use super::Inner;
use hmac::{Hmac, Mac};
use minihost_store::{Attempt, Backoff, PaymentEvent, PaymentOrder, WebhookDelivery};
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;
use url::{Host, Url};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "Minihost-Signature";
/// How long one POST may take, connecting included.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long resolving a webhook's host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a claimed delivery is not due again while it is being sent: twice the longest
/// attempt (resolve + send), so a live sender always finishes first, and a dead node's
/// deliveries go out again half a minute later.
const LEASE_MS: i64 = 30_000;
/// Most deliveries in flight at once on this node.
const MAX_IN_FLIGHT: usize = 32;

/// The operator's webhook settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOptions {
    /// Development mode: webhooks may also be plain http to loopback (`http://127.0.0.1:…`,
    /// `http://localhost:…`), and https to loopback is allowed (`--dev-webhooks`).
    pub dev: bool,
    /// Webhooks may reach private, link-local, loopback and unspecified addresses
    /// (`--webhooks-allow-private`; for operators whose app backends live on their own network).
    pub allow_private: bool,
    /// The wait before the first retry; each further retry waits twice as long.
    pub backoff_base: Duration,
    /// The longest wait between retries.
    pub backoff_cap: Duration,
}

impl Default for WebhookOptions {
    /// Production: https only, public addresses only, retries after 1 s, 2 s, 4 s, ... 1 h.
    fn default() -> Self {
        WebhookOptions {
            dev: false,
            allow_private: false,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(3600),
        }
    }
}

impl WebhookOptions {
    fn backoff(&self) -> Backoff {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1);
        Backoff {
            base_ms: ms(self.backoff_base),
            cap_ms: ms(self.backoff_cap),
        }
    }

    /// How often the sender looks for due deliveries without being woken.
    fn tick(&self) -> Duration {
        (self.backoff_base / 2).clamp(Duration::from_millis(20), Duration::from_secs(1))
    }
}

/// Why an address may not be a webhook's destination, if it may not.
fn address_refusal(ip: IpAddr, options: &WebhookOptions) -> Option<String> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return (!options.dev && !options.allow_private)
            .then(|| format!("{ip} is a loopback address (allowed only on a development server)"));
    }
    let kind = match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_unspecified() {
                Some("unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("reserved")
            } else {
                None
            }
        }
    };
    match kind {
        Some(kind) if !options.allow_private => Some(format!("{ip} is a {kind} address")),
        _ => None,
    }
}

/// Whether `host` names this machine without DNS (`localhost`, `*.localhost`).
fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Checks a webhook URL without resolving it: https (or http to loopback on a development
/// server), no credentials, and no refused address literal. The check when a manifest is
/// accepted; [`resolve`] adds the DNS check before each send.
pub(crate) fn check_url(url: &Url, options: &WebhookOptions) -> Result<(), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL must not carry credentials".into());
    }
    let loopback = match url.host() {
        Some(Host::Domain(d)) => is_localhost(d),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("the URL has no host".into()),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback && options.dev => {}
        "http" if loopback => {
            return Err(
                "http webhooks to loopback are accepted only by a server in development mode \
                 (minihost serve --dev-webhooks); use https"
                    .into(),
            );
        }
        other => return Err(format!("webhooks must use https, not {other}")),
    }
    if loopback && !options.dev && !options.allow_private {
        return Err("a loopback address is allowed only on a development server".into());
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    match literal.and_then(|ip| address_refusal(ip, options)) {
        Some(why) => Err(format!("refused destination: {why}")),
        None => Ok(()),
    }
}

/// Checks `url` ([`check_url`]), resolves its host and returns the address to connect to: the
/// first that the policy allows. The send connects to exactly that address, so a DNS answer
/// that changes between this check and the connection (rebinding) cannot move it.
pub(crate) async fn resolve(url: &Url, options: &WebhookOptions) -> Result<SocketAddr, String> {
    check_url(url, options)?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| "the URL has no port".to_owned())?;
    let candidates: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(d)) if is_localhost(d) => vec![SocketAddr::from(([127, 0, 0, 1], port))],
        Some(Host::Domain(d)) => {
            let lookup = tokio::net::lookup_host((d, port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => return Err(format!("cannot resolve {d}: {e}")),
                Err(_) => return Err(format!("resolving {d} timed out")),
            }
        }
        None => return Err("the URL has no host".into()),
    };
    let mut refused = Vec::new();
    for addr in candidates {
        match address_refusal(addr.ip(), options) {
            None => return Ok(addr),
            Some(why) => refused.push(why),
        }
    }
    Err(if refused.is_empty() {
        "the host has no address".to_owned()
    } else {
        format!("refused destination: {}", refused.join("; "))
    })
}

/// The hex HMAC-SHA256 of `"<t>.<body>"` under `secret` (Stripe's scheme).
pub fn signature(secret: &str, t: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The webhook event type of a stored payment event kind.
pub(crate) fn event_type(kind: &str) -> Option<&'static str> {
    match kind {
        "paid" => Some("payment.paid"),
        "declined" => Some("payment.declined"),
        "expired" => Some("payment.expired"),
        "refunded" => Some("payment.refunded"),
        _ => None,
    }
}

/// The JSON body of `event`'s webhook: the order as it stands when the event is dispatched,
/// its user named by the app-scoped id the app knows (`au_…`), never the internal one, and
/// for a refund what that refund gave back (`refund_amount`).
pub(crate) fn body(event: &PaymentEvent, order: &PaymentOrder, app_user: &str) -> Option<String> {
    let kind = event_type(&event.kind)?;
    let mut value = serde_json::json!({
        "id": event.id,
        "type": kind,
        "created": event.created_at_ms.div_euclid(1000),
        "data": {
            "order": order.id,
            "app": order.app_id,
            "user": app_user,
            "amount": order.amount,
            "currency": order.currency,
            "state": order.state,
            "refunded": order.refunded,
            "description": order.description,
            "idempotency_key": order.idempotency_key,
        }
    });
    if event.kind == "refunded" {
        // What this refund gave back (`refunded` is the total so far).
        value["data"]["refund_amount"] = serde_json::json!(event.amount);
    }
    Some(value.to_string())
}

/// The text of an error and its causes.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One attempt: checks the URL again, resolves it, and POSTs the signed body to the checked
/// address, following no redirect and using no proxy.
async fn send(delivery: &WebhookDelivery, secret: &str, options: &WebhookOptions) -> Attempt {
    let url = match Url::parse(&delivery.url) {
        Ok(url) => url,
        Err(e) => return Attempt::Failed(None, format!("the stored URL does not parse: {e}")),
    };
    let addr = match resolve(&url, options).await {
        Ok(addr) => addr,
        Err(why) => return Attempt::Failed(None, why),
    };
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SEND_TIMEOUT)
        .no_proxy();
    if let Some(Host::Domain(domain)) = url.host() {
        builder = builder.resolve(domain, addr);
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => return Attempt::Failed(None, format!("HTTP client: {}", error_chain(&e))),
    };
    let t = u64::try_from(minihost_core::now_millis().div_euclid(1000)).unwrap_or(0);
    let header = format!(
        "t={t},v1={}",
        signature(secret, t, delivery.body.as_bytes())
    );
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "Minihost-Webhooks/1")
        .header(SIGNATURE_HEADER, header)
        .body(delivery.body.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Attempt::Delivered(r.status().as_u16()),
        Ok(r) => Attempt::Failed(
            Some(r.status().as_u16()),
            format!("the endpoint answered {}", r.status()),
        ),
        Err(e) => Attempt::Failed(None, error_chain(&e)),
    }
}

/// Sends one claimed delivery and records the outcome; `true` if it was delivered.
async fn attempt(inner: &Inner, delivery: WebhookDelivery) -> bool {
    let store = &inner.store;
    let options = &inner.webhooks;
    let outcome = match store.webhook_secret(&delivery.app_id).await {
        Ok(secret) => send(&delivery, &secret, options).await,
        Err(e) => Attempt::Failed(None, format!("signing secret unavailable: {e}")),
    };
    let delivered = matches!(outcome, Attempt::Delivered(_));
    if let Attempt::Failed(_, why) = &outcome {
        tracing::info!(delivery = %delivery.id, attempt = delivery.attempts, error = %why,
            "webhook not delivered; will retry");
    }
    let now = minihost_core::now_millis();
    let backoff = options.backoff();
    if let Err(e) = store
        .record_webhook_attempt(&delivery.id, delivery.attempts, &outcome, backoff, now)
        .await
    {
        tracing::warn!(error = %e, delivery = %delivery.id, "webhook outcome not recorded; it will be sent again");
    }
    delivered
}

/// Starts the sender of `inner`'s platform; it ends when the platform is dropped.
pub(super) fn start(inner: &Arc<Inner>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let wake = inner.webhooks_wake.clone();
    let tick = inner.webhooks.tick();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(tick) => {}
            }
            let Some(inner) = weak.upgrade() else { return };
            let free = u32::try_from(slots.available_permits()).unwrap_or(0);
            if free == 0 {
                continue;
            }
            let now = minihost_core::now_millis();
            let due = match inner
                .store
                .claim_webhook_deliveries(now, LEASE_MS, free)
                .await
            {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook deliveries not claimed; retrying");
                    continue;
                }
            };
            for delivery in due {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    break;
                };
                let inner = inner.clone();
                tokio::spawn(async move {
                    if attempt(&inner, delivery).await {
                        // The order's next event may be due now.
                        inner.webhooks_wake.notify_one();
                    }
                    drop(permit);
                });
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, options: &WebhookOptions) -> Result<(), String> {
        check_url(&Url::parse(url).unwrap(), options)
    }

    #[test]
    fn production_accepts_only_https_to_public_hosts() {
        let prod = WebhookOptions::default();
        assert_eq!(check("https://shop.example.com/hook", &prod), Ok(()));
        assert_eq!(check("https://93.184.216.34/hook", &prod), Ok(()));
        for refused in [
            "http://shop.example.com/hook",
            "ftp://shop.example.com/hook",
            "http://127.0.0.1:9000/hook",
            "https://127.0.0.1/hook",
            "https://localhost/hook",
            "https://api.localhost/hook",
            "https://10.1.2.3/hook",
            "https://172.16.0.1/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/hook",
            "https://0.0.0.0/hook",
            "https://[::1]/hook",
            "https://[::]/hook",
            "https://[fd00::1]/hook",
            "https://[fe80::1]/hook",
            "https://[::ffff:10.0.0.1]/hook",
            "https://user:pw@shop.example.com/hook",
        ] {
            assert!(check(refused, &prod).is_err(), "{refused} was accepted");
        }
    }

    #[test]
    fn development_mode_allows_loopback_only() {
        let dev = WebhookOptions {
            dev: true,
            ..WebhookOptions::default()
        };
        assert_eq!(check("http://127.0.0.1:9000/hook", &dev), Ok(()));
        assert_eq!(check("http://localhost:9000/hook", &dev), Ok(()));
        assert_eq!(check("http://[::1]:9000/hook", &dev), Ok(()));
        assert!(check("http://shop.example.com/hook", &dev).is_err());
        assert!(check("https://10.0.0.1/hook", &dev).is_err());
    }

    #[test]
    fn the_operator_may_allow_private_addresses() {
        let private = WebhookOptions {
            allow_private: true,
            ..WebhookOptions::default()
        };
        assert_eq!(check("https://10.0.0.1/hook", &private), Ok(()));
        assert_eq!(check("https://[fd00::1]/hook", &private), Ok(()));
        assert!(check("http://10.0.0.1/hook", &private).is_err());
    }

    #[tokio::test]
    async fn resolving_pins_an_allowed_address() {
        let dev = WebhookOptions {
            dev: true,
            ..WebhookOptions::default()
        };
        let url = Url::parse("http://localhost:9000/hook").unwrap();
        assert_eq!(
            resolve(&url, &dev).await,
            Ok(SocketAddr::from(([127, 0, 0, 1], 9000)))
        );
        let prod = WebhookOptions::default();
        let url = Url::parse("https://127.0.0.1/hook").unwrap();
        assert!(resolve(&url, &prod).await.is_err());
    }

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // The vector comes from Python's hmac module, not from this code.
        let sig = signature("whsec_test", 1_700_000_000, br#"{"id":"pe_1"}"#);
        assert_eq!(
            sig,
            "d399da7659c99d4da65c1d765c634ab1e5b62644cab48697449f70c39deeb431"
        );
        assert_ne!(
            sig,
            signature("whsec_test", 1_700_000_001, br#"{"id":"pe_1"}"#)
        );
        assert_ne!(
            sig,
            signature("whsec_other", 1_700_000_000, br#"{"id":"pe_1"}"#)
        );
    }

    #[test]
    fn backoff_and_tick_follow_the_base() {
        let o = WebhookOptions {
            backoff_base: Duration::from_millis(100),
            ..WebhookOptions::default()
        };
        assert_eq!(o.backoff().after(1), 100);
        assert_eq!(o.backoff().after(3), 400);
        assert_eq!(o.tick(), Duration::from_millis(50));
        assert_eq!(WebhookOptions::default().tick(), Duration::from_millis(500));
    }
}
