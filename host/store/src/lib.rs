//! The only crate that speaks SQL. [`Store`] opens SQLite (the embedded default, WAL with
//! `synchronous=FULL`) or PostgreSQL through sqlx's `Any` driver, runs the migrations, and offers
//! typed queries. Every statement is written once, in the SQL both databases share (`$1`
//! placeholders, `RETURNING`, partial indexes). Messages are appended through a group-commit
//! writer ([`writer`]) so that many concurrent sends share one durable commit; users' answers
//! to payment requests likewise through the payment writer (`payment_writer.rs`).

mod action_keys;
mod app_users;
mod apps;
mod budgets;
mod consent_requests;
mod conversations;
mod cursors;
mod db;
mod error;
mod grants;
mod hot;
mod kv;
mod ledger;
mod messages;
mod migrate;
mod payment_writer;
mod payments;
mod payouts;
mod privacy;
mod refunds;
mod registry;
mod retention;
mod secrets;
mod sessions;
#[cfg(feature = "testing")]
pub mod testing;
mod throttles;
mod timers;
mod tokens;
mod users;
mod webhooks;
pub mod writer;
mod ws_tickets;

pub use action_keys::{ACTION_KEY_TTL_MS, ActionClaim};
pub use apps::{AppRecord, AppVersion, Install, InvocationRecord, VersionStatus};
pub use budgets::{Budget, SendBucket};
pub use conversations::{Conversation, ConversationSummary, Member};
pub use cursors::MAX_DEVICES;
pub use db::{Backend, Store, StoreConfig};
pub use error::StoreError;
pub use grants::GrantRecord;
pub use kv::{KvQuota, KvRefusal};
pub use ledger::{Account, AccountKind, AuditEntry, StatementLine, TrialBalance};
pub use messages::{Appended, HistoryQuery, NewMessage, SenderRef, rfc3339};
pub use payments::{
    NewOrder, PaymentEvent, PaymentOrder, PaymentOutcome, PaymentRefusal, PinRecord,
};
pub use payouts::{NewPayout, PaidOut, Payout, PayoutRefusal};
pub use privacy::PrivacyEntry;
pub use refunds::{NewRefund, Refund, RefundRefusal, Refunded};
pub use registry::{ListedApp, Release, ReleaseRefusal, Report, VersionReview};
pub use retention::Keep;
pub use sessions::SessionInfo;
pub use throttles::BucketShape;
pub use timers::{NewTimer, Timer};
pub use tokens::{
    AccessTokenCheck, ClientRow, LoginCodeRow, Purged, RefreshFamilyRow, RefreshTokenRow,
    SigningKeyRow,
};
pub use users::{NewUser, User, UserWithHash};
pub use webhooks::{Attempt, Backoff, NewDelivery, WebhookDelivery};

/// Result of a store operation.
pub type Result<T> = std::result::Result<T, StoreError>;
