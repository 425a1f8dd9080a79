//! Example mini-app: `/card` (or opening the app) answers with a card of buttons and an input;
//! pressing a button sends an `action` event, which the app answers with what was pressed.

use minihost_sdk::{Action, App, Card, Command, Content, Context, Error, Reply, Result, log};

/// The app.
pub struct CardDemo;

/// The question card.
fn question() -> Content {
    Card::builder()
        .text("Do you like Minihost?")
        .button("yes", "Yes", "yes")
        .button("no", "No", "no")
        .divider()
        .input("comment", "Anything to add?")
        .content()
}

impl App for CardDemo {
    fn on_command(_ctx: &Context, command: Command) -> Result<Reply> {
        match command.name.as_str() {
            "card" => Ok(Some(question())),
            _ => Ok(None),
        }
    }

    fn on_opened(_ctx: &Context) -> Result<Reply> {
        Ok(Some(question()))
    }

    fn on_action(_ctx: &Context, action: Action) -> Result<Reply> {
        let verdict = match action.id.as_str() {
            "yes" => "Glad you like it!",
            "no" => "Sorry to hear that.",
            other => return Err(Error::invalid(format!("unknown button `{other}`"))),
        };
        log::info(&format!("button {} pressed", action.id));
        let mut text = format!("You pressed {}. {verdict}", action.value);
        if let Some(comment) = action.input("comment").map(str::trim)
            && !comment.is_empty()
        {
            text.push_str(&format!(" You added: \"{comment}\""));
        }
        Ok(Some(Content::text(text)))
    }
}

minihost_sdk::export_app!(CardDemo);

#[cfg(test)]
mod tests {
    use super::*;
    use minihost_sdk::Block;

    #[test]
    fn the_card_has_two_buttons_and_an_input() {
        let Content::Card(card) = question() else {
            panic!("not a card")
        };
        let ids: Vec<&str> = card.buttons().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["yes", "no"]);
        assert!(
            card.blocks
                .iter()
                .any(|b| matches!(b, Block::Input(i) if i.id == "comment"))
        );
    }
}
