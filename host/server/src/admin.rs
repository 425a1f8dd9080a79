//! `minihost admin ...`: create users (the first admin), change roles and rotate the token
//! signing keys, directly on the database, for operators with shell access.

use crate::DbArgs;
use anyhow::Context;
use minihost_core::{DisplayName, Password, Role, Username};
use minihost_store::{NewUser, Store};
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
    /// Add a new token signing key. Tokens signed by the previous key stay valid until they
    /// expire; keys whose tokens have all expired are retired. Running nodes pick it up within
    /// their key refresh interval.
    RotateKeys {
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
    }
    Ok(ExitCode::SUCCESS)
}

async fn open(db: &DbArgs) -> anyhow::Result<Store> {
    db.announce();
    Store::open(&db.store_config(), None)
        .await
        .context("opening the database")
}
