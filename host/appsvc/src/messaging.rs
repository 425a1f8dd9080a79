//! Sending and updating messages as an app: only where the app is installed and the user is a
//! member, only with `messages.send` granted, within a send budget: replies to a user's own
//! event (its reply, and sends to its conversation) take from that user's reply budget in the
//! conversation, everything else from the conversation's unsolicited budget. The token is taken
//! in the transaction that stores the message (the store's writer batch), not one of its own.

use crate::{Actor, AppError, AppServices, Trigger};
use minihost_core::{Content, ConversationId, Message, Sender};
use minihost_hub::{Event, Topic};
use minihost_store::{Budget, NewMessage, StoreError};
use serde_json::json;

/// The scope every messaging operation needs.
pub const SCOPE: &str = "messages.send";

impl AppServices {
    /// Checks that the app may post in `conversation` on the actor's behalf: the invocation's
    /// own conversation, or one where the app is installed and the user is a member.
    async fn may_post(&self, actor: &Actor, conversation: &ConversationId) -> Result<(), AppError> {
        if actor.conversation.as_ref() == Some(conversation) {
            return Ok(());
        }
        let installed = self
            .store
            .installs(conversation)
            .await?
            .iter()
            .any(|i| i.app_id == actor.app);
        if installed && self.store.is_member(conversation, &actor.user).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("conversation"))
        }
    }

    /// Posts the app's reply to the event that invoked it, in the invocation's conversation.
    /// A reply answers the user, so it needs no scope; it is still validated and budgeted.
    pub async fn reply(&self, actor: &Actor, content: Content) -> Result<Message, AppError> {
        let conversation = actor
            .conversation
            .clone()
            .ok_or_else(|| AppError::Invalid("a reply needs a conversation".into()))?;
        self.post(actor, &conversation, content).await
    }

    /// The name the app's message carries in `conversation`: marked "(unreviewed)" unless a
    /// reviewed version is installed there, whichever way the app speaks (sandbox or backend).
    async fn sender_name(
        &self,
        actor: &Actor,
        conversation: &ConversationId,
    ) -> Result<String, AppError> {
        let known = actor
            .reviewed_here
            .filter(|_| actor.conversation.as_ref() == Some(conversation));
        let reviewed = match known {
            Some(reviewed) => reviewed,
            None => self
                .store
                .installs(conversation)
                .await?
                .iter()
                .any(|i| i.app_id == actor.app && !i.sideloaded),
        };
        Ok(if reviewed {
            actor.app_name.clone()
        } else {
            format!("{} (unreviewed)", actor.app_name)
        })
    }

    /// The budget the actor's messages to `conversation` take from: replies to a user's own
    /// event in its conversation count per user; everything else (unsolicited, or elsewhere)
    /// per conversation.
    fn budget(&self, actor: &Actor, conversation: &ConversationId) -> Budget {
        let replying =
            actor.trigger == Trigger::User && actor.conversation.as_ref() == Some(conversation);
        let (user, capacity, per_minute) = if replying {
            (
                Some(actor.user.clone()),
                self.limits.reply_burst,
                self.limits.replies_per_minute,
            )
        } else {
            (
                None,
                self.limits.unsolicited_burst,
                self.limits.unsolicited_per_minute,
            )
        };
        Budget {
            app: actor.app.clone(),
            user,
            capacity,
            per_minute,
        }
    }

    /// Validates and appends a message from the app; the writer takes its budget token in the
    /// transaction that stores it.
    async fn post(
        &self,
        actor: &Actor,
        conversation: &ConversationId,
        content: Content,
    ) -> Result<Message, AppError> {
        content
            .validate()
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let budget = self.budget(actor, conversation);
        let (burst, per_minute) = (budget.capacity, budget.per_minute);
        let name = self.sender_name(actor, conversation).await?;
        let appended = self
            .store
            .append(NewMessage {
                conversation: conversation.clone(),
                sender: Sender::App {
                    id: actor.app.clone(),
                    name,
                },
                content,
                idempotency_key: None,
                budget: Some(budget),
            })
            .await;
        match appended {
            Ok(appended) => Ok(appended.message),
            Err(StoreError::BudgetExceeded) => Err(AppError::BudgetExceeded(match actor.trigger {
                Trigger::User => format!(
                    "at most {burst} replies to one user's events per conversation in a burst, \
                     {per_minute} per minute"
                ),
                Trigger::Unsolicited => format!(
                    "at most {burst} unsolicited messages per conversation in a burst, \
                     {per_minute} per minute"
                ),
            })),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends `content` as the app; returns the stored message. What came of it (sent, or
    /// refused for want of the scope or budget) is written to the user's privacy record.
    pub async fn send_message(
        &self,
        actor: &Actor,
        conversation: &ConversationId,
        content: Content,
    ) -> Result<Message, AppError> {
        let sent = async {
            self.require(actor, SCOPE).await?;
            self.may_post(actor, conversation).await?;
            self.post(actor, conversation, content).await
        }
        .await;
        self.noted(&actor.user, actor, SCOPE, sent).await
    }

    /// Replaces the content of a message this app sent (e.g. a live tally) and tells every
    /// connected member.
    pub async fn update_message(
        &self,
        actor: &Actor,
        conversation: &ConversationId,
        message: &str,
        content: Content,
    ) -> Result<Message, AppError> {
        self.require(actor, SCOPE).await?;
        self.may_post(actor, conversation).await?;
        content
            .validate()
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let updated = self
            .store
            .update_app_message(conversation, message, &actor.app, &content)
            .await?
            .ok_or(AppError::NotFound("message of this app"))?;
        self.fanout.publish(
            Topic::Conversation(conversation.clone()),
            Event::json(&json!({
                "type": "message_updated",
                "conversation": conversation,
                "seq": updated.seq,
                "message": updated,
            })),
        );
        Ok(updated)
    }

    /// How many more messages the app may send to `conversation` right now.
    pub async fn send_budget(
        &self,
        actor: &Actor,
        conversation: &ConversationId,
    ) -> Result<u32, AppError> {
        self.require(actor, SCOPE).await?;
        self.may_post(actor, conversation).await?;
        let budget = self.budget(actor, conversation);
        let left = self
            .store
            .send_tokens_left(
                &actor.app,
                budget.bucket(conversation.as_str()),
                budget.capacity,
                budget.per_minute,
            )
            .await?;
        Ok(u32::try_from(left.max(0)).unwrap_or(u32::MAX))
    }
}
