//! Lucky Envelope: group "lucky money". `/envelope 20.00 EUR 5 for 10m Happy new year` asks the
//! sender to pay 20.00 EUR (`payments.request`); once they confirm, the app splits the amount
//! into 5 random shares (each at least one minor unit, summing to the amount), posts a card with
//! an Open button, and sets a timer for the expiry. Each member opens at most one share, first
//! come first served, paid from the app's merchant account (`payments.pay-user`); when the timer
//! fires, whatever nobody opened goes back to the sender as a refund of their payment.
//!
//! The envelope lives in the app's shared storage under `env:<request id>`. Concurrent opens
//! read, change and `compare-and-set` it ([`storage::update`]), so of two members racing for the
//! last share exactly one gets it; payouts and the refund are keyed (`claim:<request>:<user>`,
//! `leftover:<request>`), so running an event again never pays twice.

use minihost_sdk::payments::{Order, Payout};
use minihost_sdk::storage::Bucket;
use minihost_sdk::{
    Action, App, Card, Command, Content, Context, Error, PaymentStatus, PaymentUpdate, Reply,
    Result, log, messaging, payments, storage, timers,
};
use std::hash::{BuildHasher, Hasher};

/// Most shares of one envelope.
pub const MAX_SHARES: u32 = 100;
/// How long an envelope stays open without `for ...`: one day.
pub const DEFAULT_TTL_SECS: u32 = 24 * 60 * 60;
/// The longest an envelope may stay open: seven days (the platform's longest timer).
pub const MAX_TTL_SECS: u32 = 7 * 24 * 60 * 60;
/// The currency when the command names none.
pub const DEFAULT_CURRENCY: &str = "EUR";
/// Tries of one read-change-write of an envelope before giving up (many members racing).
const ATTEMPTS: u32 = 200;

/// Digits after the decimal point of the currencies the app takes.
pub fn exponent(currency: &str) -> Option<u32> {
    match currency {
        "EUR" | "USD" | "GBP" | "CNY" | "CHF" | "CAD" | "AUD" | "HKD" | "SGD" => Some(2),
        "JPY" | "KRW" => Some(0),
        _ => None,
    }
}

/// `minor` units written with the currency's decimals: `1234` EUR is `12.34 EUR`.
pub fn format_amount(minor: u64, currency: &str) -> String {
    match exponent(currency) {
        Some(0) | None => format!("{minor} {currency}"),
        Some(e) => {
            let unit = 10u64.pow(e);
            let width = e as usize;
            format!("{}.{:0width$} {currency}", minor / unit, minor % unit)
        }
    }
}

/// `12.5` in a currency with `exponent` decimals, as minor units (`1250`).
pub fn parse_amount(text: &str, exponent: u32) -> Option<u64> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > exponent as usize
        || (exponent == 0 && text.contains('.'))
    {
        return None;
    }
    let unit = 10u64.checked_pow(exponent)?;
    let mut minor = whole.parse::<u64>().ok()?.checked_mul(unit)?;
    if !frac.is_empty() {
        let scale = 10u64.checked_pow(exponent - frac.len() as u32)?;
        minor = minor.checked_add(frac.parse::<u64>().ok()?.checked_mul(scale)?)?;
    }
    Some(minor)
}

/// `30s`, `10m`, `24h`, `2d` as seconds.
pub fn parse_duration(text: &str) -> Option<u32> {
    let (number, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u32 = number.parse().ok()?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }?;
    (1..=MAX_TTL_SECS).contains(&secs).then_some(secs)
}

/// What `/envelope` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Minor units.
    pub amount: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// How many shares.
    pub shares: u32,
    /// How long it stays open, seconds.
    pub ttl_secs: u32,
    /// The sender's words (may be empty).
    pub message: String,
}

const USAGE: &str = "usage: /envelope AMOUNT [CURRENCY] SHARES [for 30s|10m|24h] [MESSAGE]";

/// Parses `AMOUNT [CURRENCY] SHARES [for DURATION] [MESSAGE]`.
pub fn parse(args: &str) -> Result<Spec> {
    let mut words = args.split_whitespace().peekable();
    let amount_text = words.next().ok_or_else(|| Error::invalid(USAGE))?;
    let currency = match words.peek() {
        Some(w) if w.len() == 3 && w.bytes().all(|b| b.is_ascii_uppercase()) => {
            let c = (*w).to_owned();
            words.next();
            c
        }
        _ => DEFAULT_CURRENCY.to_owned(),
    };
    let exp = exponent(&currency)
        .ok_or_else(|| Error::invalid(format!("lucky envelopes do not take {currency}")))?;
    let amount = parse_amount(amount_text, exp).ok_or_else(|| {
        Error::invalid(format!(
            "`{amount_text}` is not an amount in {currency} ({exp} decimals at most)"
        ))
    })?;
    let shares: u32 = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| Error::invalid(USAGE))?;
    if !(1..=MAX_SHARES).contains(&shares) {
        return Err(Error::invalid(format!(
            "an envelope has 1 to {MAX_SHARES} shares"
        )));
    }
    if amount < u64::from(shares) {
        return Err(Error::invalid(format!(
            "{} cannot make {shares} shares of at least {} each",
            format_amount(amount, &currency),
            format_amount(1, &currency)
        )));
    }
    let mut ttl_secs = DEFAULT_TTL_SECS;
    if words.peek() == Some(&"for") {
        words.next();
        let d = words.next().unwrap_or("");
        ttl_secs = parse_duration(d).ok_or_else(|| {
            Error::invalid(format!(
                "`{d}` is not a duration from 1s to 7d (like 30s, 10m, 24h)"
            ))
        })?;
    }
    let message: String = words.collect::<Vec<_>>().join(" ");
    Ok(Spec {
        amount,
        currency,
        shares,
        ttl_secs,
        message: message.chars().take(100).collect(),
    })
}

/// A small random generator (SplitMix64) seeded from the sandbox's random source.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from WASI's random source (through std's hasher keys).
    pub fn from_entropy() -> Rng {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        Rng(h.finish())
    }

    /// A generator with a fixed seed (tests).
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        z % bound
    }
}

/// Splits `amount` into `shares` random shares of at least one unit each, summing to `amount`
/// (the "double the average" rule: each share is at most twice the average of what is left).
pub fn split(amount: u64, shares: u32, rng: &mut Rng) -> Vec<u64> {
    let mut left = amount;
    let mut out = Vec::with_capacity(shares as usize);
    for i in 0..shares {
        let n = u64::from(shares - i);
        if n == 1 {
            out.push(left);
            break;
        }
        // Leave at least one unit for each of the other n - 1 shares.
        let most = (left / n * 2).clamp(1, left - (n - 1));
        let share = 1 + rng.below(most);
        let share = share.min(left - (n - 1));
        out.push(share);
        left -= share;
    }
    out
}

/// Where an envelope stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the sender to pay.
    Pending,
    /// Paid and open: members can open shares.
    Open,
    /// The timer fired: what was left went back to the sender.
    Expired,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Open => "open",
            Status::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        [Status::Pending, Status::Open, Status::Expired]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// An envelope as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Where it stands.
    pub status: Status,
    /// What was asked for.
    pub spec: Spec,
    /// The shares, in the order they are handed out (empty until paid).
    pub shares: Vec<u64>,
    /// Who opened which amount, in order.
    pub claims: Vec<(String, u64)>,
}

impl Envelope {
    /// A new envelope waiting for payment.
    pub fn pending(spec: Spec) -> Envelope {
        Envelope {
            status: Status::Pending,
            spec,
            shares: Vec::new(),
            claims: Vec::new(),
        }
    }

    /// What the members have opened so far.
    pub fn claimed(&self) -> u64 {
        self.claims.iter().map(|(_, a)| a).sum()
    }

    /// What nobody opened.
    pub fn leftover(&self) -> u64 {
        self.spec.amount - self.claimed()
    }

    /// The share `user` opened, if any.
    pub fn claim_of(&self, user: &str) -> Option<u64> {
        self.claims.iter().find(|(u, _)| u == user).map(|(_, a)| *a)
    }

    /// The stored form: one `name=value` line each.
    pub fn encode(&self) -> Vec<u8> {
        let join = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let mut s = format!(
            "status={}\namount={}\ncurrency={}\ncount={}\nttl={}\nmessage={}\nshares={}\n",
            self.status.as_str(),
            self.spec.amount,
            self.spec.currency,
            self.spec.shares,
            self.spec.ttl_secs,
            self.spec.message.replace(['\n', '\r'], " "),
            join(&self.shares),
        );
        for (user, amount) in &self.claims {
            s.push_str(&format!("claim={user}:{amount}\n"));
        }
        s.into_bytes()
    }

    /// Reads the stored form back.
    pub fn decode(bytes: &[u8]) -> Result<Envelope> {
        let bad = || Error::invalid("this envelope's record is damaged");
        let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
        let mut env = Envelope::pending(Spec {
            amount: 0,
            currency: String::new(),
            shares: 0,
            ttl_secs: 0,
            message: String::new(),
        });
        for line in text.lines() {
            let (name, value) = line.split_once('=').ok_or_else(bad)?;
            match name {
                "status" => env.status = Status::parse(value).ok_or_else(bad)?,
                "amount" => env.spec.amount = value.parse().map_err(|_| bad())?,
                "currency" => env.spec.currency = value.to_owned(),
                "count" => env.spec.shares = value.parse().map_err(|_| bad())?,
                "ttl" => env.spec.ttl_secs = value.parse().map_err(|_| bad())?,
                "message" => env.spec.message = value.to_owned(),
                "shares" if value.is_empty() => {}
                "shares" => {
                    env.shares = value
                        .split(',')
                        .map(|s| s.parse().map_err(|_| bad()))
                        .collect::<Result<_>>()?;
                }
                "claim" => {
                    let (user, amount) = value.rsplit_once(':').ok_or_else(bad)?;
                    env.claims
                        .push((user.to_owned(), amount.parse().map_err(|_| bad())?));
                }
                _ => return Err(bad()),
            }
        }
        Ok(env)
    }

    /// The envelope's card: what it holds, how many opened, and once it is over, why.
    pub fn card(&self, request: &str) -> Content {
        let spec = &self.spec;
        let mut b = Card::builder().text(if spec.message.is_empty() {
            "🧧 Lucky envelope".to_owned()
        } else {
            format!("🧧 {}", spec.message)
        });
        b = b.text(format!(
            "{} in {} shares · {} opened",
            format_amount(spec.amount, &spec.currency),
            spec.shares,
            self.claims.len()
        ));
        let all_opened = !self.shares.is_empty() && self.claims.len() == self.shares.len();
        b = match self.status {
            Status::Expired => b.divider().text(format!(
                "Expired: {} nobody opened went back to the sender.",
                format_amount(self.leftover(), &spec.currency)
            )),
            Status::Open if all_opened => b.divider().text("All shares are opened."),
            _ => b,
        };
        // The button stays: a latecomer who presses it is told why there is nothing for them.
        b.button("claim", "Open", request).content()
    }
}

fn key(request: &str) -> String {
    format!("env:{request}")
}

fn card_key(request: &str) -> String {
    format!("card:{request}")
}

fn timer_key(request: &str) -> String {
    format!("expire:{request}")
}

/// Loads an envelope (an error for the user if there is none).
fn load(request: &str) -> Result<Envelope> {
    let bytes = storage::get(Bucket::Shared, &key(request))?
        .ok_or_else(|| Error::invalid("this envelope no longer exists"))?;
    Envelope::decode(&bytes)
}

/// Updates the envelope's card, if it has one (best effort: the money is what counts).
fn refresh_card(request: &str, env: &Envelope) {
    if let Ok(Some(card)) = storage::get_string(Bucket::Shared, &card_key(request))
        && let Err(e) = messaging::update(&card, &env.card(request))
    {
        log::warn(&format!("card of {request} not updated: {e:?}"));
    }
}

/// What opening a share came to.
enum Opened {
    /// This user got `amount`; `last` if it was the last share.
    Won { amount: u64, last: bool },
    /// This user had opened it before.
    Again(u64),
    /// No share is left.
    Empty,
    /// The envelope is not open (not paid yet, or expired).
    Closed(Status),
}

/// The app.
pub struct RedEnvelope;

impl RedEnvelope {
    fn open(ctx: &Context, request: &str) -> Result<Reply> {
        let k = key(request);
        let mut seen = None;
        let opened = storage::update(Bucket::Shared, &k, ATTEMPTS, |current| {
            let mut env = Envelope::decode(
                current.ok_or_else(|| Error::invalid("this envelope no longer exists"))?,
            )?;
            let outcome = if env.status != Status::Open {
                Opened::Closed(env.status)
            } else if let Some(amount) = env.claim_of(&ctx.user) {
                Opened::Again(amount)
            } else if let Some(&amount) = env.shares.get(env.claims.len()) {
                env.claims.push((ctx.user.clone(), amount));
                let last = env.claims.len() == env.shares.len();
                seen = Some(env.clone());
                return Ok((Some(env.encode()), Opened::Won { amount, last }));
            } else {
                Opened::Empty
            };
            seen = Some(env);
            Ok((None, outcome))
        })?;
        let Some(env) = seen else {
            return Err(Error::invalid("this envelope no longer exists"));
        };
        let currency = env.spec.currency.clone();
        match opened {
            Opened::Won { amount, last } => {
                Self::pay(ctx, request, amount, &currency)?;
                if last {
                    timers::cancel(&timer_key(request))?;
                }
                refresh_card(request, &env);
                log::info(&format!("{} opened {amount} of {request}", ctx.user));
                Ok(None)
            }
            Opened::Again(amount) => {
                // Pays again under the same key: a no-op if the first payout went through,
                // the payout if that event stopped before it.
                Self::pay(ctx, request, amount, &currency)?;
                Err(Error::invalid(format!(
                    "you already opened this envelope: you got {}",
                    format_amount(amount, &currency)
                )))
            }
            Opened::Empty => Err(Error::invalid("all the shares of this envelope are taken")),
            Opened::Closed(Status::Expired) => Err(Error::invalid("this envelope has expired")),
            Opened::Closed(_) => Err(Error::invalid("this envelope is not paid for yet")),
        }
    }

    fn pay(ctx: &Context, request: &str, amount: u64, currency: &str) -> Result<String> {
        payments::pay_user(&Payout {
            amount,
            currency: currency.to_owned(),
            description: "Lucky envelope share".to_owned(),
            idempotency_key: format!("claim:{request}:{}", ctx.user),
        })
    }

    /// The sender paid: split, post the card, set the expiry.
    fn paid(ctx: &Context, request: &str) -> Result<Reply> {
        let k = key(request);
        let opened = storage::update(Bucket::Shared, &k, ATTEMPTS, |current| {
            let Some(current) = current else {
                return Ok((None, None));
            };
            let mut env = Envelope::decode(current)?;
            if env.status != Status::Pending {
                return Ok((None, None));
            }
            env.shares = split(env.spec.amount, env.spec.shares, &mut Rng::from_entropy());
            env.status = Status::Open;
            Ok((Some(env.encode()), Some(env)))
        })?;
        let Some(env) = opened else {
            // Told before (at least once delivery): nothing more to do.
            return Ok(None);
        };
        let card = messaging::reply(ctx, &env.card(request))?;
        storage::set(Bucket::Shared, &card_key(request), &card)?;
        timers::set(&timer_key(request), env.spec.ttl_secs)?;
        Ok(None)
    }

    /// The timer fired: close the envelope and give back what nobody opened.
    fn expire(request: &str) -> Result<Reply> {
        let k = key(request);
        let closed = storage::update(Bucket::Shared, &k, ATTEMPTS, |current| {
            let Some(current) = current else {
                return Ok((None, None));
            };
            let mut env = Envelope::decode(current)?;
            match env.status {
                Status::Pending => Ok((None, None)),
                // Fired again (at least once): give back again under the same key.
                Status::Expired => Ok((None, Some(env))),
                Status::Open => {
                    env.status = Status::Expired;
                    Ok((Some(env.encode()), Some(env)))
                }
            }
        })?;
        let Some(env) = closed else { return Ok(None) };
        let leftover = env.leftover();
        if leftover > 0 {
            let refund = payments::refund(request, leftover, &format!("leftover:{request}"))?;
            log::info(&format!("{request} expired; {leftover} back ({refund})"));
        }
        refresh_card(request, &env);
        Ok(None)
    }
}

impl App for RedEnvelope {
    fn on_command(_ctx: &Context, command: Command) -> Result<Reply> {
        if command.name != "envelope" {
            return Ok(None);
        }
        let spec = parse(&command.args)?;
        let mut nonce = Rng::from_entropy();
        let order = Order {
            amount: spec.amount,
            currency: spec.currency.clone(),
            description: if spec.message.is_empty() {
                format!("Lucky envelope, {} shares", spec.shares)
            } else {
                format!("Lucky envelope, {} shares: {}", spec.shares, spec.message)
            },
            idempotency_key: format!(
                "env:{:016x}{:016x}",
                nonce.below(u64::MAX),
                nonce.below(u64::MAX)
            ),
        };
        let request = payments::request(&order)?;
        storage::set(
            Bucket::Shared,
            &key(&request),
            Envelope::pending(spec.clone()).encode(),
        )?;
        Ok(Some(Content::text(format!(
            "Confirm the payment of {} to send your lucky envelope.",
            format_amount(spec.amount, &spec.currency)
        ))))
    }

    fn on_action(ctx: &Context, action: Action) -> Result<Reply> {
        match action.id.as_str() {
            "claim" => Self::open(ctx, &action.value),
            other => Err(Error::invalid(format!("no button `{other}`"))),
        }
    }

    fn on_payment(ctx: &Context, update: PaymentUpdate) -> Result<Reply> {
        match update.status {
            PaymentStatus::Confirmed => Self::paid(ctx, &update.request),
            PaymentStatus::Declined | PaymentStatus::Expired => {
                if storage::delete(Bucket::Shared, &key(&update.request))? {
                    Ok(Some(Content::text(
                        "The lucky envelope was not sent: its payment was not confirmed.",
                    )))
                } else {
                    Ok(None)
                }
            }
            // The leftover going back: the card says so.
            PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded => Ok(None),
        }
    }

    fn on_timer(_ctx: &Context, timer: &str) -> Result<Reply> {
        match timer.strip_prefix("expire:") {
            Some(request) if load(request).is_ok() => Self::expire(request),
            _ => Ok(None),
        }
    }
}

minihost_sdk::export_app!(RedEnvelope);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envelopes() {
        let s = parse("20 5 for 10m Happy new year").unwrap();
        assert_eq!(
            s,
            Spec {
                amount: 2000,
                currency: "EUR".into(),
                shares: 5,
                ttl_secs: 600,
                message: "Happy new year".into(),
            }
        );
        let s = parse("1000 JPY 3").unwrap();
        assert_eq!(
            (s.amount, s.currency.as_str(), s.ttl_secs),
            (1000, "JPY", DEFAULT_TTL_SECS)
        );
        assert_eq!(parse("0.05 USD 5").unwrap().amount, 5);
        for (bad, needle) in [
            ("", "usage"),
            ("abc 5", "not an amount"),
            ("1.234 5", "not an amount"),
            ("10 XYZ 5", "do not take XYZ"),
            ("0.04 5", "cannot make 5 shares"),
            ("10 0", "1 to 100 shares"),
            ("10 101", "1 to 100 shares"),
            ("10 5 for 8d", "not a duration"),
            ("10 5 for soon", "not a duration"),
            ("10.5 JPY 5", "not an amount"),
        ] {
            let e = format!("{:?}", parse(bad).unwrap_err());
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn shares_are_positive_and_sum_to_the_amount() {
        for seed in 0..500u64 {
            let mut rng = Rng::seeded(seed);
            let shares = (seed % MAX_SHARES as u64) as u32 + 1;
            let amount = u64::from(shares) + seed * 37;
            let split = split(amount, shares, &mut rng);
            assert_eq!(split.len(), shares as usize);
            assert!(split.iter().all(|s| *s >= 1), "{split:?}");
            assert_eq!(split.iter().sum::<u64>(), amount);
        }
        // Not all equal: the shares are random.
        let split = split(10_000, 10, &mut Rng::seeded(7));
        assert!(split.iter().any(|s| *s != split[0]), "{split:?}");
        // As many shares as units: one unit each.
        assert_eq!(split_units(), vec![1; 5]);
    }

    fn split_units() -> Vec<u64> {
        split(5, 5, &mut Rng::seeded(1))
    }

    #[test]
    fn envelopes_round_trip_through_storage() {
        let mut env = Envelope::pending(parse("10 3 for 1h Hi = there").unwrap());
        env.status = Status::Open;
        env.shares = split(1000, 3, &mut Rng::seeded(3));
        env.claims.push(("au_x".into(), env.shares[0]));
        let back = Envelope::decode(&env.encode()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.leftover(), 1000 - env.shares[0]);
        assert!(Envelope::decode(b"status=lost\n").is_err());
        assert_eq!(format_amount(1234, "EUR"), "12.34 EUR");
        assert_eq!(format_amount(5, "JPY"), "5 JPY");
    }
}
