//! Builds the population a run needs before its timed phase: N users signed up and signed in
//! (concurrently: each costs an argon2id hash on the server), and M group conversations with
//! user `i` in conversation `i % M`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};

use crate::api;
use crate::http::Conn;

const PASSWORD: &str = "bench-password-0";

/// One signed-in user.
pub struct User {
    pub name: String,
    pub token: String,
    /// Index into [`Population::conversations`], if the user is in one.
    pub conv: Option<usize>,
}

pub struct Population {
    pub users: Vec<User>,
    /// Conversation ids.
    pub conversations: Vec<String>,
}

/// A username prefix unique to this run, so runs against a long-lived server do not collide:
/// "b" and six base-36 digits of the clock, then "_".
pub fn run_prefix() -> String {
    let mut n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut s = String::from("b");
    for _ in 0..6 {
        let d = (n % 36) as u32;
        s.push(char::from_digit(d, 36).unwrap_or('0'));
        n /= 36;
    }
    s.push('_');
    s
}

/// Runs `job(conn, i)` for every `i` in `0..n` on `workers` connections; results in order.
async fn on_workers<T, F>(addr: SocketAddr, n: usize, workers: usize, job: F) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: AsyncJob<T> + Clone + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers.clamp(1, n.max(1)) {
        let next = next.clone();
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(done);
                }
                done.push((i, job.run(&mut conn, i).await?));
            }
        }));
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for t in tasks {
        for (i, v) in t.await.context("setup worker panicked")?? {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(v);
            }
        }
    }
    out.into_iter()
        .map(|v| v.context("a setup job produced nothing"))
        .collect()
}

/// One unit of setup work on a connection.
pub trait AsyncJob<T> {
    fn run(&self, conn: &mut Conn, i: usize) -> impl Future<Output = Result<T>> + Send;
}

#[derive(Clone)]
struct SignUp {
    prefix: Arc<str>,
}

impl AsyncJob<(String, String)> for SignUp {
    async fn run(&self, conn: &mut Conn, i: usize) -> Result<(String, String)> {
        let name = format!("{}{i}", self.prefix);
        api::sign_up(conn, &name, PASSWORD).await?;
        let token = api::sign_in(conn, &name, PASSWORD).await?;
        Ok((name, token))
    }
}

#[derive(Clone)]
struct Group {
    /// (creator token, other members, title) per conversation.
    plans: Arc<Vec<(String, Vec<String>, String)>>,
}

impl AsyncJob<String> for Group {
    async fn run(&self, conn: &mut Conn, i: usize) -> Result<String> {
        let (token, members, title) = self.plans.get(i).context("no such group plan")?;
        api::create_group(conn, token, members, title).await
    }
}

/// Signs up `clients` users and creates `conversations` groups spreading them evenly.
pub async fn populate(
    addr: SocketAddr,
    clients: usize,
    conversations: usize,
    workers: usize,
) -> Result<Population> {
    if conversations > 0 && clients < 2 * conversations {
        bail!(
            "need at least two clients per conversation ({clients} clients, {conversations} conversations)"
        );
    }
    let prefix: Arc<str> = run_prefix().into();
    let signed = on_workers(
        addr,
        clients,
        workers,
        SignUp {
            prefix: prefix.clone(),
        },
    )
    .await?;
    let mut users: Vec<User> = signed
        .into_iter()
        .enumerate()
        .map(|(i, (name, token))| User {
            name,
            token,
            conv: (conversations > 0).then(|| i % conversations),
        })
        .collect();

    let plans: Vec<(String, Vec<String>, String)> = (0..conversations)
        .map(|c| {
            let creator = users.get(c).map(|u| u.token.clone()).unwrap_or_default();
            let members = users
                .iter()
                .enumerate()
                .filter(|(i, _)| i % conversations == c && *i != c)
                .map(|(_, u)| u.name.clone())
                .collect();
            (creator, members, format!("{prefix}g{c}"))
        })
        .collect();
    let conversations = on_workers(
        addr,
        conversations,
        workers,
        Group {
            plans: Arc::new(plans),
        },
    )
    .await?;
    for u in &mut users {
        u.conv = u.conv.filter(|c| *c < conversations.len());
    }
    Ok(Population {
        users,
        conversations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_makes_valid_usernames() {
        let p = run_prefix();
        let name = format!("{p}99999");
        assert!(name.len() <= 32);
        assert!(name.starts_with(|c: char| c.is_ascii_lowercase()));
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
}
