//! Example mini-app: replies to `/echo TEXT` with TEXT (and with a usage line to a bare
//! `/echo`). The smallest useful app: no capability, the reply is the handler's return value.

use minihost_sdk::{App, Command, Content, Context, Reply, Result};

/// The app.
pub struct Echo;

impl App for Echo {
    fn on_command(_ctx: &Context, command: Command) -> Result<Reply> {
        if command.name != "echo" {
            return Ok(None);
        }
        let text = command.args.trim();
        if text.is_empty() {
            return Ok(Some(Content::text("Usage: /echo TEXT")));
        }
        Ok(Some(Content::text(text)))
    }
}

minihost_sdk::export_app!(Echo);

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            app: "echo".into(),
            user: "u_1".into(),
            conversation: "c_1".into(),
            locale: "en".into(),
            developer: false,
        }
    }

    fn check(name: &str, args: &str, expected: Option<&str>) {
        let command = Command {
            name: name.into(),
            args: args.into(),
        };
        let reply = Echo::on_command(&ctx(), command).unwrap();
        assert_eq!(reply, expected.map(Content::text), "/{name} {args}");
    }

    #[test]
    fn echoes_the_text() {
        check("echo", "hi there", Some("hi there"));
        check("echo", "  padded  ", Some("padded"));
        check("echo", "", Some("Usage: /echo TEXT"));
        check("other", "hi", None);
    }
}
