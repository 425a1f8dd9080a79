//! The simulator behind `minihost app run` and `minihost app build`: a node without a listener.
//! It is [`assemble`](crate::assemble)d exactly as `minihost serve` is (store, app services,
//! broker, capabilities, runtime limits, executor), on a throwaway SQLite database, and drives
//! the platform's own code: the upload checks, the consent answer's checks, the dispatch that
//! builds the invocation from the manifest (declared ∩ granted scopes, limits capped by the
//! operator's maximum), the messenger's content checks, budgets and storage quotas. So an app
//! behaves here as it behaves on a server, because it is the same code.

use std::path::PathBuf;

use anyhow::Context as _;
use minihost_api::{ActionInput, ApiError, AppPlatform};
use minihost_core::{DisplayName, Role, Sender, Username};
use minihost_devtools::{
    BoxFuture, Checked, SimMessage, SimPayment, SimRequest, SimResult, Simulator,
};
use minihost_runtime::CompileConfig;
use minihost_store::{HistoryQuery, NewUser, StoreConfig};

use crate::{NodeOptions, Parts, assemble, platform};

/// Runs apps for the developer CLI on a node of its own.
#[derive(Debug, Clone, Default)]
pub struct NodeSimulator {
    /// Where compiled components are cached between runs (`None`: compile every run).
    pub cache_dir: Option<PathBuf>,
}

impl NodeSimulator {
    /// A simulator caching compiled components in the user's cache folder
    /// (`$XDG_CACHE_HOME/minihost/components`, else `~/.cache/minihost/components`).
    pub fn for_user() -> NodeSimulator {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
        NodeSimulator {
            cache_dir: base.map(|b| b.join("minihost").join("components")),
        }
    }

    /// A node of its own on a fresh SQLite database in `dir`.
    async fn node(&self, dir: &std::path::Path) -> anyhow::Result<Parts> {
        let options = NodeOptions {
            cache_dir: self.cache_dir.clone(),
            // Compiled in this process, bounded by the compile slots (a developer's own code).
            compile: CompileConfig::default(),
            ..NodeOptions::new(
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                StoreConfig::Sqlite {
                    data_dir: dir.to_path_buf(),
                },
            )
        };
        assemble(&options).await
    }

    async fn run(&self, request: SimRequest) -> anyhow::Result<Result<SimResult, String>> {
        let dir = tempfile::tempdir().context("creating the simulator's database folder")?;
        let parts = self.node(dir.path()).await?;
        let result = simulate(&parts, request).await;
        parts.store.close().await;
        result
    }
}

/// A refusal the developer reads: what a client of the server would be told.
fn refusal(e: ApiError) -> anyhow::Result<Result<SimResult, String>> {
    match e {
        ApiError::Internal(detail) => Err(anyhow::anyhow!("the simulator failed: {detail}")),
        e => Ok(Err(e.to_string())),
    }
}

async fn simulate(parts: &Parts, request: SimRequest) -> anyhow::Result<Result<SimResult, String>> {
    let store = &parts.store;
    let developer = store
        .create_user(NewUser {
            username: Username::parse("you").map_err(|e| anyhow::anyhow!("{e}"))?,
            display_name: DisplayName::parse("You").map_err(|e| anyhow::anyhow!("{e}"))?,
            // Nobody signs in to the simulator.
            password_hash: "!".into(),
            role: Role::Developer,
        })
        .await?;
    let conversation = store.create_group(&developer.id, "Simulator", &[]).await?;
    let platform = &parts.platform;
    let sideloaded = match platform
        .sideload(
            &developer,
            &conversation,
            request.manifest,
            request.component,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => return refusal(e),
    };
    let Some(install) = store
        .installs(&conversation.id)
        .await?
        .into_iter()
        .find(|i| i.app_id == sideloaded.app)
    else {
        anyhow::bail!("the sideloaded app is not installed in the simulated conversation");
    };

    let mut result = SimResult {
        reports: Vec::new(),
        rejected: Vec::new(),
        notices: Vec::new(),
        messages: Vec::new(),
        payments: Vec::new(),
    };
    let mut events = vec![request.event];
    let mut press = request.then_press;
    while let Some(event) = events.pop() {
        let ran = match platform
            .run_answered(&developer, &install, event, &request.grants)
            .await
        {
            Ok(ran) => ran,
            Err(e) => return refusal(e),
        };
        result.reports.push(ran.report);
        result.rejected.push(ran.rejected);
        result.notices.push(ran.notice);
        if let Some((button, inputs)) = press.take() {
            let Some(card) = app_messages(parts, &conversation.id)
                .await?
                .into_iter()
                .rev()
                .find(|m| matches!(m.content, minihost_core::Content::Card(_)))
            else {
                return Ok(Err(format!(
                    "--action {button}: the app answered without a card, so there is no button \
                     to press"
                )));
            };
            match ActionInput::from_card(&card, button, inputs) {
                Ok(input) => events.push(platform::action_event(&card, input)),
                Err(e) => return refusal(e),
            }
        }
    }
    result.messages = app_messages(parts, &conversation.id)
        .await?
        .into_iter()
        .map(|m| SimMessage {
            id: m.id.to_string(),
            content: m.content,
        })
        .collect();
    let mut orders = store.orders_of(&developer.id, false, 200).await?;
    orders.reverse();
    for order in orders {
        let view = parts
            .svc
            .payment_view(&order, "en")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        result.payments.push(SimPayment {
            id: view.id,
            amount: view.amount,
            currency: view.currency,
            amount_text: view.amount_text,
            description: view.description,
            state: view.state,
        });
    }
    Ok(Ok(result))
}

/// The messages the app sent into the conversation, oldest first.
async fn app_messages(
    parts: &Parts,
    conversation: &minihost_core::ConversationId,
) -> anyhow::Result<Vec<minihost_core::Message>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = parts
            .store
            .history(
                conversation,
                HistoryQuery {
                    before: None,
                    after: Some(after),
                    limit: 200,
                },
            )
            .await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = last.seq;
        out.extend(
            page.into_iter()
                .filter(|m| matches!(m.sender, Sender::App { .. })),
        );
    }
}

impl Simulator for NodeSimulator {
    fn check<'a>(
        &'a self,
        manifest: String,
        component: Vec<u8>,
    ) -> BoxFuture<'a, anyhow::Result<Result<Checked, String>>> {
        Box::pin(async move {
            let dir = tempfile::tempdir().context("creating the simulator's database folder")?;
            let parts = self.node(dir.path()).await?;
            let checked = parts.platform.check(&manifest, &component).await;
            parts.store.close().await;
            match checked {
                Ok((manifest, app)) => Ok(Ok(Checked {
                    app: manifest.id.to_string(),
                    version: manifest.version.to_string(),
                    interfaces: app.interfaces().iter().map(|i| i.name().into()).collect(),
                })),
                Err(ApiError::Internal(detail)) => {
                    Err(anyhow::anyhow!("the simulator failed: {detail}"))
                }
                Err(e) => Ok(Err(e.to_string())),
            }
        })
    }

    fn simulate<'a>(
        &'a self,
        request: SimRequest,
    ) -> BoxFuture<'a, anyhow::Result<Result<SimResult, String>>> {
        Box::pin(self.run(request))
    }
}
