//! `minihost admin ...`: create users (the first admin), change roles, rotate the token
//! signing keys, put test money into a wallet (audited) and check the books (the trial
//! balance), directly on the database, for operators with shell access.

use crate::DbArgs;
use anyhow::Context;
use minihost_core::{Currency, DisplayName, Password, Role, Username};
use minihost_store::{NewUser, Store, TrialBalance};
use std::process::ExitCode;

/// Administration commands.
#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Create a user with a role (e.g. the first admin).
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: Option<String>,
        /// The password (or set MINIHOST_PASSWORD).
        #[arg(long, env = "MINIHOST_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "user")]
        role: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Change a user's role.
    SetRole {
        username: String,
        role: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Disable an account: it cannot sign in and its sessions are revoked (running nodes stop
    /// its tokens within a second and close its WebSockets within their session check, 60 s by
    /// default; `PUT /api/v1/users/{username}/disabled` closes them at once).
    Disable {
        username: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Enable a disabled account again (its old sessions stay revoked).
    Enable {
        username: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Add a new token signing key. Tokens signed by the previous key stay valid until they
    /// expire; keys whose tokens have all expired are retired. Running nodes pick it up within
    /// their key refresh interval.
    RotateKeys {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Put test money into a user's wallet (from the external `top-up` account; audited with
    /// the operator, $USER or `admin-cli`). Prints the new balance.
    TopUp {
        /// The user, by username.
        user: String,
        /// The amount in minor units (cents for EUR, yen for JPY), at most the platform's cap.
        amount: u64,
        /// An ISO 4217 code such as EUR.
        currency: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// The ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
}

/// `minihost admin ledger ...`.
#[derive(clap::Subcommand)]
pub enum LedgerCommand {
    /// Print the trial balance (per currency the accounts sum to zero, no wallet or merchant
    /// account negative, every balance equals its entries, every transaction balances, every
    /// paid order has its payment); exit non-zero, naming what is wrong, if it does not hold.
    Check {
        #[command(flatten)]
        db: DbArgs,
    },
}

pub async fn run(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::CreateUser {
            username,
            display_name,
            password,
            role,
            db,
        } => {
            let username = Username::parse(&username)?;
            let display_name =
                DisplayName::parse(display_name.as_deref().unwrap_or(username.as_str()))?;
            let password = Password::parse(&password)?;
            let role: Role = role.parse()?;
            let store = open(&db).await?;
            let hash = minihost_core::secret::hash_password(password.expose())
                .context("hashing the password")?;
            let user = store
                .create_user(NewUser {
                    username,
                    display_name,
                    password_hash: hash,
                    role,
                })
                .await
                .context("creating the user")?;
            println!(
                "created {} ({}) with role {}",
                user.username,
                user.id,
                user.role.as_str()
            );
            store.close().await;
        }
        AdminCommand::SetRole { username, role, db } => {
            let role: Role = role.parse()?;
            let store = open(&db).await?;
            let user = store
                .set_role(&username, role)
                .await
                .with_context(|| format!("setting the role of {username}"))?;
            println!("{} is now {}", user.username, user.role.as_str());
            store.close().await;
        }
        AdminCommand::Disable { username, db } => set_disabled(&username, &db, true).await?,
        AdminCommand::Enable { username, db } => set_disabled(&username, &db, false).await?,

        AdminCommand::RotateKeys { db } => {
            let store = open(&db).await?;
            let broker = minihost_broker::service::Broker::open(
                store.clone(),
                minihost_broker::service::BrokerConfig::default(),
            )
            .await
            .context("loading the signing keys")?;
            let rotation = broker
                .rotate_keys(minihost_broker::service::now())
                .await
                .context("rotating the signing keys")?;
            println!("new active signing key {}", rotation.active);
            for kid in &rotation.retired {
                println!("retired signing key {kid}");
            }
            store.close().await;
        }
        AdminCommand::TopUp {
            user,
            amount,
            currency,
            db,
        } => {
            let currency = Currency::parse(&currency)?;
            let amount = minihost_core::money::check_amount(amount)?;
            let store = open(&db).await?;
            let Some(found) = store.user_by_username(&user).await? else {
                store.close().await;
                anyhow::bail!("no user named `{user}`");
            };
            let operator = std::env::var("USER")
                .ok()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| "admin-cli".to_owned());
            let wallet = store
                .top_up(&found.user.id, amount, currency.code(), &operator)
                .await
                .with_context(|| format!("topping up the wallet of {user}"))?;
            println!(
                "topped up {user}'s {} wallet by {}: balance {}",
                currency.code(),
                currency.format(amount.unsigned_abs(), "en"),
                currency.format(wallet.balance.unsigned_abs(), "en"),
            );
            store.close().await;
        }
        AdminCommand::Ledger(LedgerCommand::Check { db }) => {
            let store = open(&db).await?;
            let tb = store
                .trial_balance()
                .await
                .context("reading the trial balance")?;
            store.close().await;
            print!("{}", report(&tb));
            if !tb.holds() {
                eprintln!("error: the books do not hold (see above)");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The trial balance as the operator reads it: one line per currency, then one per problem.
fn report(tb: &TrialBalance) -> String {
    let mut out = String::new();
    if tb.sums.is_empty() {
        out.push_str("no accounts yet\n");
    }
    for (currency, sum) in &tb.sums {
        let verdict = if *sum == 0 {
            "balances"
        } else {
            "DOES NOT BALANCE"
        };
        out.push_str(&format!(
            "{currency}: accounts sum to {sum} minor units: {verdict}\n"
        ));
    }
    for a in &tb.negative {
        out.push_str(&format!(
            "negative balance: {} account {} of {} holds {} {} minor units\n",
            a.kind, a.id, a.owner, a.balance, a.currency
        ));
    }
    for a in &tb.drifted {
        out.push_str(&format!(
            "balance differs from its entries: {} account {} of {} holds {} {} minor units\n",
            a.kind, a.id, a.owner, a.balance, a.currency
        ));
    }
    for txn in &tb.unbalanced {
        out.push_str(&format!(
            "transaction {txn}: its entries do not sum to zero\n"
        ));
    }
    for order in &tb.unsettled {
        out.push_str(&format!(
            "order {order}: paid, but without exactly one payment transaction, or its refunds do not add up\n"
        ));
    }
    for payout in &tb.unmatched_payouts {
        out.push_str(&format!(
            "payout {payout}: without a payout transaction of its amount\n"
        ));
    }
    if tb.holds() {
        out.push_str("the books hold\n");
    }
    out
}

/// Disables (or enables) `username`'s account.
async fn set_disabled(username: &str, db: &DbArgs, disable: bool) -> anyhow::Result<()> {
    let store = open(db).await?;
    let user = store
        .set_disabled(username, disable)
        .await
        .with_context(|| format!("changing whether {username} is disabled"))?;
    let state = if disable { "disabled" } else { "enabled" };
    println!("{} is now {state}", user.username);
    store.close().await;
    Ok(())
}

async fn open(db: &DbArgs) -> anyhow::Result<Store> {
    db.announce();
    Store::open(&db.store_config(), None)
        .await
        .context("opening the database")
}
