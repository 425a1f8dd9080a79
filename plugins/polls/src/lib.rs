//! Polls: `/poll QUESTION | OPTION | OPTION ...` posts a card with a button per option; a press
//! records (or changes) the presser's vote and updates the card's tally in place; the creator's
//! Close button ends the poll. State lives in the app's shared storage bucket: the poll under
//! `poll:<card id>:*`, each vote under its own key `vote:<card id>:<voter>`, so concurrent votes
//! never overwrite each other.

use minihost_sdk::storage::Bucket;
use minihost_sdk::{
    Action, App, Card, Command, Content, Context, Error, Reply, Result, messaging, storage,
};

/// Most options of one poll.
pub const MAX_OPTIONS: usize = 10;

/// A poll as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    /// The question.
    pub question: String,
    /// The options, in order.
    pub options: Vec<String>,
}

/// Parses `QUESTION | OPTION | OPTION ...`.
pub fn parse(args: &str) -> Result<Poll> {
    let mut parts = args.split('|').map(str::trim);
    let question = parts.next().unwrap_or_default().to_owned();
    let options: Vec<String> = parts.filter(|p| !p.is_empty()).map(str::to_owned).collect();
    if question.is_empty() || options.len() < 2 {
        return Err(Error::invalid(
            "usage: /poll QUESTION | OPTION | OPTION ...",
        ));
    }
    if options.len() > MAX_OPTIONS {
        return Err(Error::invalid(format!(
            "a poll has at most {MAX_OPTIONS} options"
        )));
    }
    let mut seen = Vec::new();
    for o in &options {
        if seen.contains(&o) {
            return Err(Error::invalid(format!("option {o:?} appears twice")));
        }
        seen.push(o);
    }
    Ok(Poll { question, options })
}

/// The tally line: `pizza: 2 · sushi: 1`.
pub fn tally_line(poll: &Poll, counts: &[u32]) -> String {
    poll.options
        .iter()
        .zip(counts)
        .map(|(o, n)| format!("{o}: {n}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The poll's card: open polls have a button per option and a Close button.
pub fn card(poll: &Poll, counts: &[u32], closed: bool) -> Content {
    let mut b = Card::builder().text(poll.question.clone());
    if !closed {
        for (i, o) in poll.options.iter().enumerate() {
            b = b.button(format!("opt-{i}"), o.clone(), i.to_string());
        }
    }
    b = b.divider().text(tally_line(poll, counts));
    if closed {
        b = b.text("Poll closed.");
    } else {
        b = b.button("close", "Close poll", "");
    }
    b.content()
}

fn key(card: &str, what: &str) -> String {
    format!("poll:{card}:{what}")
}

fn load(card: &str) -> Result<Poll> {
    let text = storage::get_string(Bucket::Shared, &key(card, "def"))?
        .ok_or_else(|| Error::invalid("this poll no longer exists"))?;
    let mut lines = text.lines().map(str::to_owned);
    let question = lines.next().unwrap_or_default();
    Ok(Poll {
        question,
        options: lines.collect(),
    })
}

fn counts(card: &str, poll: &Poll) -> Result<Vec<u32>> {
    let mut counts = vec![0u32; poll.options.len()];
    let prefix = format!("vote:{card}:");
    for k in storage::keys(Bucket::Shared, &prefix)? {
        if let Some(v) = storage::get_string(Bucket::Shared, &k)?
            && let Ok(i) = v.parse::<usize>()
            && let Some(c) = counts.get_mut(i)
        {
            *c += 1;
        }
    }
    Ok(counts)
}

/// The app.
pub struct Polls;

impl App for Polls {
    fn on_command(ctx: &Context, command: Command) -> Result<Reply> {
        if command.name != "poll" {
            return Ok(None);
        }
        let poll = parse(&command.args)?;
        let zero = vec![0; poll.options.len()];
        let card_id = messaging::reply(ctx, &card(&poll, &zero, false))?;
        let mut def = poll.question.clone();
        for o in &poll.options {
            def.push('\n');
            def.push_str(o);
        }
        storage::set(Bucket::Shared, &key(&card_id, "def"), def)?;
        storage::set(Bucket::Shared, &key(&card_id, "creator"), &ctx.user)?;
        Ok(None)
    }

    fn on_action(ctx: &Context, action: Action) -> Result<Reply> {
        let card_id = action.message.clone();
        let poll = load(&card_id)?;
        let closed = storage::get(Bucket::Shared, &key(&card_id, "closed"))?.is_some();
        if action.id == "close" {
            let creator = storage::get_string(Bucket::Shared, &key(&card_id, "creator"))?;
            if creator.as_deref() != Some(ctx.user.as_str()) {
                return Err(Error::invalid("only the poll's creator can close it"));
            }
            storage::set(Bucket::Shared, &key(&card_id, "closed"), "1")?;
            messaging::update(&card_id, &card(&poll, &counts(&card_id, &poll)?, true))?;
            return Ok(None);
        }
        if closed {
            return Err(Error::invalid("this poll is closed"));
        }
        let choice: usize = action
            .value
            .parse()
            .ok()
            .filter(|i| *i < poll.options.len())
            .ok_or_else(|| Error::invalid("no such option"))?;
        storage::set(
            Bucket::Shared,
            &format!("vote:{card_id}:{}", ctx.user),
            choice.to_string(),
        )?;
        messaging::update(&card_id, &card(&poll, &counts(&card_id, &poll)?, false))?;
        Ok(None)
    }
}

minihost_sdk::export_app!(Polls);

#[cfg(test)]
mod tests {
    use super::*;
    use minihost_sdk::Block;

    #[test]
    fn parses_polls() {
        let p = parse("Lunch? | pizza | sushi").unwrap();
        assert_eq!(p.question, "Lunch?");
        assert_eq!(p.options, ["pizza", "sushi"]);
        assert!(parse("Lunch?").is_err());
        assert!(parse("Lunch? | pizza").is_err());
        assert!(parse(" | a | b").is_err());
        assert!(parse("Q | a | a").is_err());
        let many = format!(
            "Q{}",
            " | x".to_owned() + &(0..11).map(|i| format!(" | o{i}")).collect::<String>()
        );
        assert!(parse(&many).is_err());
    }

    #[test]
    fn cards_show_buttons_while_open_and_the_tally_always() {
        let p = parse("Lunch? | pizza | sushi").unwrap();
        let Content::Card(open) = card(&p, &[2, 1], false) else {
            panic!()
        };
        let ids: Vec<_> = open.buttons().map(|b| b.id.clone()).collect();
        assert_eq!(ids, ["opt-0", "opt-1", "close"]);
        assert!(
            open.blocks
                .contains(&Block::Text("pizza: 2 · sushi: 1".into()))
        );
        let Content::Card(closed) = card(&p, &[2, 1], true) else {
            panic!()
        };
        assert_eq!(closed.buttons().count(), 0);
        assert!(closed.blocks.contains(&Block::Text("Poll closed.".into())));
    }
}
