//! What every messenger-side capability crate shares: reading the invocation's [`Actor`] from
//! the runtime's extensions, converting content between the WIT contract and the core model,
//! and turning an [`AppError`] into the WIT `error` a guest receives.

use minihost_appsvc::{Actor, AppError};
use minihost_core::{
    Block as CoreBlock, Button as CoreButton, Card as CoreCard, Content as CoreContent,
    Input as CoreInput,
};
use minihost_runtime::bindings::{Block, Button, Card, Input};
use minihost_runtime::{Content, Error, InvocationData};

/// The actor of the current invocation (the dispatcher puts it in the extensions).
pub fn actor(data: &InvocationData) -> Result<Actor, Error> {
    data.extensions()
        .get::<Actor>()
        .cloned()
        .ok_or_else(|| Error::Unavailable("this invocation has no messenger context".into()))
}

/// An [`AppError`] as the guest sees it.
pub fn wit_error(e: AppError) -> Error {
    match e {
        AppError::PermissionDenied(scope) => Error::PermissionDenied(scope),
        AppError::QuotaExceeded(_) | AppError::BudgetExceeded(_) => Error::QuotaExceeded,
        AppError::Invalid(why) | AppError::Conflict(why) => Error::Invalid(why),
        AppError::NotFound(what) => Error::Invalid(format!("{what} not found")),
        AppError::Unavailable(why) => Error::Unavailable(why),
    }
}

/// WIT content as the core model (validated by the caller).
pub fn to_core(content: Content) -> CoreContent {
    match content {
        Content::Text(text) => CoreContent::Text { text },
        Content::Card(card) => CoreContent::Card(CoreCard {
            blocks: card
                .blocks
                .into_iter()
                .map(|b| match b {
                    Block::Text(text) => CoreBlock::Text { text },
                    Block::Button(b) => CoreBlock::Button(CoreButton {
                        id: b.id,
                        label: b.label,
                        value: b.value,
                    }),
                    Block::Image(url) => CoreBlock::Image { url },
                    Block::Input(i) => CoreBlock::Input(CoreInput {
                        id: i.id,
                        placeholder: i.placeholder,
                    }),
                    Block::Divider => CoreBlock::Divider,
                })
                .collect(),
        }),
    }
}

/// Core content in the WIT contract's shape.
pub fn to_wit(content: CoreContent) -> Content {
    match content {
        CoreContent::Text { text } => Content::Text(text),
        CoreContent::Card(card) => Content::Card(Card {
            blocks: card
                .blocks
                .into_iter()
                .map(|b| match b {
                    CoreBlock::Text { text } => Block::Text(text),
                    CoreBlock::Button(b) => Block::Button(Button {
                        id: b.id,
                        label: b.label,
                        value: b.value,
                    }),
                    CoreBlock::Image { url } => Block::Image(url),
                    CoreBlock::Input(i) => Block::Input(Input {
                        id: i.id,
                        placeholder: i.placeholder,
                    }),
                    CoreBlock::Divider => Block::Divider,
                })
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_round_trips_between_wit_and_core() {
        let core = CoreContent::Card(CoreCard {
            blocks: vec![
                CoreBlock::Text {
                    text: "Lunch?".into(),
                },
                CoreBlock::Button(CoreButton {
                    id: "a".into(),
                    label: "Pizza".into(),
                    value: "0".into(),
                }),
                CoreBlock::Image {
                    url: "https://x/y.png".into(),
                },
                CoreBlock::Input(CoreInput {
                    id: "n".into(),
                    placeholder: "note".into(),
                }),
                CoreBlock::Divider,
            ],
        });
        assert_eq!(to_core(to_wit(core.clone())), core);
        assert_eq!(to_core(Content::Text("hi".into())), CoreContent::text("hi"));
    }

    #[test]
    fn app_errors_become_typed_wit_errors() {
        assert_eq!(
            wit_error(AppError::PermissionDenied("storage".into())),
            Error::PermissionDenied("storage".into())
        );
        assert_eq!(
            wit_error(AppError::QuotaExceeded("x".into())),
            Error::QuotaExceeded
        );
        assert!(
            matches!(wit_error(AppError::NotFound("conversation")), Error::Invalid(m) if m.contains("conversation"))
        );
    }
}
