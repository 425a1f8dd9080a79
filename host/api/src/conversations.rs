//! Conversations: open a direct conversation or create a group, list mine with last message and
//! unread count, show one with its members, add/remove members, leave, and mark read.
//! Non-members get 404 for everything: they learn nothing about a conversation.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use minihost_core::{ConversationId, ConversationKind, GroupTitle, Limits, Message, UserId};
use minihost_hub::{Event, Invalidation, Topic};
use minihost_store::{Conversation, ConversationSummary, Member, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations", post(create).get(list))
        .route("/api/v1/conversations/{id}", get(show))
        .route("/api/v1/conversations/{id}/members", post(add_members))
        .route(
            "/api/v1/conversations/{id}/members/{username}",
            delete(remove_member),
        )
        .route("/api/v1/conversations/{id}/read", post(mark_read))
}

/// Body of `POST /api/v1/conversations`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateConversation {
    /// `direct` or `group`.
    kind: String,
    /// Usernames of the other members (exactly one for `direct`).
    #[serde(default)]
    members: Vec<String>,
    /// Group title (required for groups).
    title: Option<String>,
}

/// A conversation as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConversationView {
    id: String,
    #[schema(value_type = String)]
    kind: ConversationKind,
    title: Option<String>,
    owner: Option<String>,
    last_seq: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<Vec<MemberView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::schemas::MessageDoc>)]
    last_message: Option<Message>,
    /// In the list: messages from others after the read marker and after the furthest
    /// delivery cursor of the user's devices (WebSocket `ack`).
    #[serde(skip_serializing_if = "Option::is_none")]
    unread: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_seq: Option<i64>,
}

/// A member as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct MemberView {
    id: String,
    username: String,
    display_name: String,
    read_seq: i64,
}

fn view(c: Conversation, members: Option<Vec<Member>>) -> ConversationView {
    ConversationView {
        id: c.id.to_string(),
        kind: c.kind,
        title: c.title,
        owner: c.owner.map(|o| o.to_string()),
        last_seq: c.last_seq,
        members: members.map(|ms| {
            ms.into_iter()
                .map(|m| MemberView {
                    id: m.user.to_string(),
                    username: m.username,
                    display_name: m.display_name,
                    read_seq: m.read_seq,
                })
                .collect()
        }),
        last_message: None,
        unread: None,
        read_seq: None,
    }
}

/// The conversation if `user` is a member, else 404.
pub(crate) async fn member_conversation(
    state: &AppState,
    id: &str,
    user: &User,
) -> Result<Conversation, ApiError> {
    state
        .store
        .conversation_for_member(&ConversationId::from_string(id), &user.id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))
}

/// The conversation's id if `user` is a member, else 404, possibly from the node's
/// short-lived cache (the send path, where a membership a second old is good enough).
pub(crate) async fn member_conversation_cached(
    state: &AppState,
    id: &str,
    user: &User,
) -> Result<ConversationId, ApiError> {
    let conv_id = ConversationId::from_string(id);
    if state.cache.member(&conv_id, &user.id) {
        return Ok(conv_id);
    }
    member_conversation(state, id, user).await?;
    state.cache.put_member(&user.id, &conv_id);
    Ok(conv_id)
}

async fn users_named(state: &AppState, names: &[String]) -> Result<Vec<User>, ApiError> {
    let mut users = Vec::with_capacity(names.len());
    for name in names {
        let user = state
            .store
            .user_by_username(name)
            .await?
            .ok_or_else(|| ApiError::invalid("members", format!("no user named {name:?}")))?;
        users.push(user.user);
    }
    Ok(users)
}

fn announce_joined(state: &AppState, conversation: &ConversationId, users: &[UserId]) {
    for u in users {
        state
            .fanout
            .publish(Topic::User(u.clone()), Event::Joined(conversation.clone()));
    }
}

#[utoipa::path(post, path = "/api/v1/conversations", operation_id = "create_conversation",
    security(("session" = [])),
    request_body(content = CreateConversation, example = json!({"kind": "group", "title": "Lunch", "members": ["bob"]})),
    responses((status = 201, body = ConversationView, description = "Created"),
              (status = 200, body = ConversationView, description = "The existing direct conversation"),
              (status = 422, description = "A field breaks a rule, or a member does not exist"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn create(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<CreateConversation>,
) -> Result<(StatusCode, Json<ConversationView>), ApiError> {
    let kind: ConversationKind = body.kind.parse()?;
    let mut names: Vec<String> = body
        .members
        .into_iter()
        .filter(|n| n != me.username.as_str())
        .collect();
    names.sort();
    names.dedup();
    match kind {
        ConversationKind::Direct => {
            if body.title.is_some() {
                return Err(ApiError::invalid(
                    "title",
                    "direct conversations have no title",
                ));
            }
            if names.len() != 1 {
                return Err(ApiError::invalid(
                    "members",
                    "a direct conversation has exactly one other member",
                ));
            }
            let other = users_named(&state, &names).await?;
            let other = &other[0];
            let (conv, created) = state.store.open_direct(&me.id, &other.id).await?;
            if created {
                announce_joined(&state, &conv.id, &[me.id.clone(), other.id.clone()]);
            }
            let members = state.store.members(&conv.id).await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(view(conv, Some(members)))))
        }
        ConversationKind::Group => {
            let title = GroupTitle::parse(body.title.as_deref().unwrap_or_default())?;
            if names.len() + 1 > Limits::MAX_GROUP_MEMBERS {
                return Err(ApiError::invalid(
                    "members",
                    format!("a group has at most {} members", Limits::MAX_GROUP_MEMBERS),
                ));
            }
            let others: Vec<UserId> = users_named(&state, &names)
                .await?
                .into_iter()
                .map(|u| u.id)
                .collect();
            let conv = state
                .store
                .create_group(&me.id, title.as_str(), &others)
                .await?;
            let mut everyone = others;
            everyone.push(me.id.clone());
            announce_joined(&state, &conv.id, &everyone);
            let members = state.store.members(&conv.id).await?;
            Ok((StatusCode::CREATED, Json(view(conv, Some(members)))))
        }
    }
}

#[utoipa::path(get, path = "/api/v1/conversations", operation_id = "list_conversations",
    security(("session" = [])),
    responses((status = 200, body = Vec<ConversationView>, description = "Most recent first"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Vec<ConversationView>>, ApiError> {
    let list = state.store.conversations_of(&me.id).await?;
    Ok(Json(
        list.into_iter()
            .map(|s: ConversationSummary| {
                let mut v = view(s.conversation, None);
                v.last_message = s.last_message;
                v.unread = Some(s.unread);
                v.read_seq = Some(s.read_seq);
                v
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}", operation_id = "show_conversation",
    params(crate::openapi::params::Conversation), security(("session" = [])),
    responses((status = 200, body = ConversationView), (status = 404, description = "No such conversation, or not a member"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn show(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    let conv = member_conversation(&state, &id, &me).await?;
    let members = state.store.members(&conv.id).await?;
    Ok(Json(view(conv, Some(members))))
}

/// Body of `POST /api/v1/conversations/{id}/members`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddMembers {
    usernames: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/members", operation_id = "add_members",
    params(crate::openapi::params::Conversation), security(("session" = [])),
    request_body(content = AddMembers, example = json!({"usernames": ["carol"]})),
    responses((status = 200, body = ConversationView), (status = 403, description = "Only the owner adds members"),
              (status = 404, description = "No such conversation, or not a member"),
              (status = 422, description = "A direct conversation, a user that does not exist, or too many members"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn add_members(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddMembers>,
) -> Result<Json<ConversationView>, ApiError> {
    let conv = member_conversation(&state, &id, &me).await?;
    if conv.kind == ConversationKind::Direct {
        return Err(ApiError::invalid(
            "usernames",
            "direct conversations have fixed members; create a group",
        ));
    }
    if conv.owner.as_ref() != Some(&me.id) {
        return Err(ApiError::Forbidden(
            "only the group's owner adds members".into(),
        ));
    }
    let current = state.store.members(&conv.id).await?.len();
    if current + body.usernames.len() > Limits::MAX_GROUP_MEMBERS {
        return Err(ApiError::invalid(
            "usernames",
            format!("a group has at most {} members", Limits::MAX_GROUP_MEMBERS),
        ));
    }
    let users: Vec<UserId> = users_named(&state, &body.usernames)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let added = state.store.add_members(&conv.id, &users).await?;
    announce_joined(&state, &conv.id, &added);
    let members = state.store.members(&conv.id).await?;
    Ok(Json(view(conv, Some(members))))
}

#[utoipa::path(delete, path = "/api/v1/conversations/{id}/members/{username}", operation_id = "remove_member",
    params(crate::openapi::params::Conversation, crate::openapi::params::Username), security(("session" = [])),
    responses((status = 204, description = "Removed (or left)"),
              (status = 403, description = "Only the owner removes others"),
              (status = 404, description = "No such conversation or member"),
              (status = 409, description = "The owner cannot leave"),
              (status = 422, description = "Direct conversations have fixed members"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let conv = member_conversation(&state, &id, &me).await?;
    if conv.kind == ConversationKind::Direct {
        return Err(ApiError::invalid(
            "username",
            "direct conversations have fixed members",
        ));
    }
    let leaving = username == me.username.as_str();
    let is_owner = conv.owner.as_ref() == Some(&me.id);
    if leaving && is_owner {
        return Err(ApiError::Conflict(
            "the owner cannot leave the group".into(),
        ));
    }
    if !leaving && !is_owner {
        return Err(ApiError::Forbidden(
            "only the group's owner removes members".into(),
        ));
    }
    let target = state
        .store
        .user_by_username(&username)
        .await?
        .ok_or(ApiError::NotFound("member"))?
        .user;
    state.cache.drop_member(&conv.id, &target.id);
    if !state.store.remove_member(&conv.id, &target.id).await? {
        return Err(ApiError::NotFound("member"));
    }
    // Again after the commit (a send may have cached it meanwhile), here and on every node.
    state.cache.drop_member(&conv.id, &target.id);
    state.fanout.invalidate(Invalidation::Member {
        conversation: conv.id.clone(),
        user: target.id.clone(),
    });
    state
        .fanout
        .publish(Topic::User(target.id), Event::Left(conv.id));
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/conversations/{id}/read`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MarkRead {
    seq: i64,
}

/// The read marker after an update.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReadMarker {
    read_seq: i64,
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/read", operation_id = "mark_read",
    params(crate::openapi::params::Conversation), security(("session" = [])),
    request_body(content = MarkRead, example = json!({"seq": 1})),
    responses((status = 200, body = ReadMarker),
              (status = 404, description = "No such conversation, or not a member"),
              (status = 422, description = "A negative seq"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn mark_read(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MarkRead>,
) -> Result<Json<ReadMarker>, ApiError> {
    let conv = member_conversation(&state, &id, &me).await?;
    if body.seq < 0 {
        return Err(ApiError::invalid("seq", "must not be negative"));
    }
    let read_seq = state.store.mark_read(&conv.id, &me.id, body.seq).await?;
    Ok(Json(ReadMarker { read_seq }))
}
