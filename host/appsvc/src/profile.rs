//! Reading profiles: the invoking user's own, or a fellow member's who granted `profile.read`
//! to the same app. Each read lands in the read user's privacy record.

use crate::{Actor, AppError, AppServices};
use serde::Serialize;

/// The scope profile reads need.
pub const SCOPE: &str = "profile.read";

/// What an app may know about a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The user as the app sees them.
    pub user: String,
    /// Their display name.
    pub display_name: String,
    /// Their avatar URL, if any.
    pub avatar: Option<String>,
    /// Their locale.
    pub locale: String,
}

impl AppServices {
    /// The profile of `target` (an app-scoped id) as `actor.app` may see it. The read, or its
    /// refusal, lands in the privacy record of the user whose profile was asked for.
    pub async fn profile(&self, actor: &Actor, target: &str) -> Result<Profile, AppError> {
        if let Err(e) = self.require(actor, SCOPE).await {
            return self.noted(&actor.user, actor, SCOPE, Err(e)).await;
        }
        let user = if target == actor.app_user_id {
            actor.user.clone()
        } else {
            let other = self
                .user_for(&actor.app, target)
                .await?
                .ok_or(AppError::NotFound("user"))?;
            // The other user must have granted the same scope to this app...
            if !self
                .granted(&other, &actor.app)
                .await?
                .iter()
                .any(|s| s == SCOPE)
            {
                let refused = Err(AppError::PermissionDenied(format!(
                    "{SCOPE} (that user has not granted it)"
                )));
                return self.noted(&other, actor, SCOPE, refused).await;
            }
            // ...and, inside an invocation, be a member of its conversation.
            if let Some(conv) = &actor.conversation
                && !self.store.is_member(conv, &other).await?
            {
                return Err(AppError::NotFound("user"));
            }
            other
        };
        let record = self
            .store
            .user_by_id(&user)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let profile = Profile {
            user: target.to_owned(),
            display_name: record.display_name.as_str().to_owned(),
            avatar: None,
            locale: record.locale.clone().unwrap_or_else(|| "en".into()),
        };
        self.noted(&user, actor, SCOPE, Ok(profile)).await
    }
}
