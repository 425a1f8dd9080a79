//! Test guest for the runtime benches: `/noop` returns nothing; `/send` makes one
//! `messaging.send` to the event's conversation and returns nothing.

use minihost_sdk::{App, Command, Content, Context, Reply, Result, messaging};

struct Bench;

impl App for Bench {
    fn on_command(ctx: &Context, command: Command) -> Result<Reply> {
        if command.name == "send" {
            messaging::reply(ctx, &Content::text("x"))?;
        }
        Ok(None)
    }
}

minihost_sdk::export_app!(Bench);
