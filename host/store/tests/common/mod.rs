//! Shared by the store's tests: users made directly in the store.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use minihost_core::{DisplayName, Role, Username};
use minihost_store::{NewUser, Store, User};

/// A user `name` with `role` (a password nobody signs in with).
pub async fn user_with_role(store: &Store, name: &str, role: Role) -> User {
    store
        .create_user(NewUser {
            username: Username::parse(name).unwrap(),
            display_name: DisplayName::parse(name).unwrap(),
            password_hash: "not-a-real-hash".into(),
            role,
        })
        .await
        .unwrap()
}

/// An ordinary user `name`.
pub async fn user(store: &Store, name: &str) -> User {
    user_with_role(store, name, Role::User).await
}
