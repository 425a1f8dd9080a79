//! Accounts: create, look up, change role, the language a user reads in.

use crate::{Result, Store, StoreError};
use minihost_core::{DisplayName, Role, UserId, Username};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// A user as other users and the API see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// Unique login name.
    pub username: Username,
    /// Name shown to others.
    pub display_name: DisplayName,
    /// What the account may do.
    pub role: Role,
    /// The language the user chose to read in (a BCP 47 tag), if they chose one.
    pub locale: Option<String>,
}

/// A user together with the stored password hash, for sign-in only.
#[derive(Debug, Clone)]
pub struct UserWithHash {
    /// The user.
    pub user: User,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// Whether an admin disabled the account (it cannot sign in, and its sessions are revoked).
    pub disabled: bool,
}

/// What is needed to create an account.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: Username,
    /// Shown name.
    pub display_name: DisplayName,
    /// argon2id PHC string of the password.
    pub password_hash: String,
    /// Initial role.
    pub role: Role,
}

const USER_COLUMNS: &str = "id, username, display_name, role, password_hash, disabled_at, locale";
/// [`user_from_row`]'s columns of `users` joined as `u`.
pub(crate) const JOINED_USER_COLUMNS: &str =
    "u.id, u.username, u.display_name, u.role, u.password_hash, u.disabled_at, u.locale";

pub(crate) fn user_from_row(row: &AnyRow) -> Result<UserWithHash> {
    let role: String = row.try_get("role")?;
    Ok(UserWithHash {
        user: User {
            id: UserId::from_string(row.try_get::<String, _>("id")?),
            username: Username::from_trusted(row.try_get("username")?),
            display_name: DisplayName::from_trusted(row.try_get("display_name")?),
            role: role
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("role {role:?}")))?,
            locale: row.try_get("locale")?,
        },
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
    })
}

impl Store {
    /// Creates an account. A taken username is [`StoreError::Conflict`]`("username")`.
    pub async fn create_user(&self, new: NewUser) -> Result<User> {
        let id = UserId::generate();
        sqlx::query(
            "INSERT INTO users (id, username, display_name, password_hash, role, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(new.username.as_str())
        .bind(new.display_name.as_str())
        .bind(&new.password_hash)
        .bind(new.role.as_str())
        .bind(minihost_core::now_millis())
        .execute(&self.write_pool)
        .await
        .map_err(|e| StoreError::conflict_on_unique(e, "username"))?;
        Ok(User {
            id,
            username: new.username,
            display_name: new.display_name,
            role: new.role,
            locale: None,
        })
    }

    /// The account with this username, with its password hash.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserWithHash>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The account with this id.
    pub async fn user_by_id(&self, id: &UserId) -> Result<Option<User>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?.map(|u| u.user))
    }

    /// Disables (or enables again) an account; disabling revokes all its sessions in the same
    /// transaction. [`StoreError::NotFound`] if there is no such user.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<User> {
        let now = minihost_core::now_millis();
        let mut tx = self.write_pool.begin().await?;
        let done = sqlx::query("UPDATE users SET disabled_at = $1 WHERE username = $2")
            .bind(disabled.then_some(now))
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if disabled {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1
                  WHERE revoked_at IS NULL
                    AND user_id = (SELECT id FROM users WHERE username = $2)",
            )
            .bind(now)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.user_by_username(username)
            .await?
            .map(|u| u.user)
            .ok_or(StoreError::NotFound)
    }

    /// Replaces a user's password hash.
    pub async fn set_password_hash(&self, user: &UserId, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user.as_str())
            .execute(&self.write_pool)
            .await?;
        Ok(())
    }

    /// Sets the language `user` reads in (a BCP 47 tag, checked by the caller).
    pub async fn set_locale(&self, user: &UserId, locale: &str) -> Result<()> {
        sqlx::query("UPDATE users SET locale = $1 WHERE id = $2")
            .bind(locale)
            .bind(user.as_str())
            .execute(&self.write_pool)
            .await?;
        Ok(())
    }

    /// Changes a user's role; [`StoreError::NotFound`] if there is no such user.
    pub async fn set_role(&self, username: &str, role: Role) -> Result<User> {
        let done = sqlx::query("UPDATE users SET role = $1 WHERE username = $2")
            .bind(role.as_str())
            .bind(username)
            .execute(&self.write_pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.user_by_username(username)
            .await?
            .map(|u| u.user)
            .ok_or(StoreError::NotFound)
    }
}
