//! Test guest for the benches: `/noop` returns nothing; `/send` makes one `messaging.send` to
//! the event's conversation and returns nothing; `/pay AMOUNT KEY` asks the invoking user to
//! pay AMOUNT euro cents under idempotency key KEY and returns nothing.

use minihost_sdk::{App, Command, Content, Context, Error, Reply, Result, messaging, payments};

struct Bench;

impl App for Bench {
    fn on_command(ctx: &Context, command: Command) -> Result<Reply> {
        match command.name.as_str() {
            "send" => {
                messaging::reply(ctx, &Content::text("x"))?;
            }
            "pay" => {
                let mut args = command.args.split_whitespace();
                let amount = args
                    .next()
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| Error::invalid("/pay AMOUNT KEY"))?;
                let key = args.next().unwrap_or("bench").to_owned();
                payments::request(&payments::Order {
                    amount,
                    currency: "EUR".into(),
                    description: "bench".into(),
                    idempotency_key: key,
                })?;
            }
            _ => {}
        }
        Ok(None)
    }
}

minihost_sdk::export_app!(Bench);
