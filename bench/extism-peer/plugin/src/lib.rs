//! Extism plugin equivalent to the runtime's bench guest: `handle` takes a small JSON context
//! and event (what our WIT `handle(context, event)` receives), returns nothing for `/noop`, and
//! for `/send` calls the host function `send` once (our `messaging.send`) before returning.

use extism_pdk::{FnResult, Json, host_fn, plugin_fn};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Context {
    #[allow(dead_code)]
    app: String,
    #[allow(dead_code)]
    user: String,
    conversation: String,
    #[allow(dead_code)]
    locale: String,
}

#[derive(Deserialize)]
struct Event {
    command: String,
    #[allow(dead_code)]
    args: String,
}

#[derive(Deserialize)]
struct Input {
    context: Context,
    event: Event,
}

#[derive(Serialize)]
struct Send {
    conversation: String,
    text: String,
}

#[host_fn]
extern "ExtismHost" {
    fn send(message: Json<Send>) -> String;
}

#[plugin_fn]
pub fn handle(Json(input): Json<Input>) -> FnResult<()> {
    if input.event.command == "send" {
        let message = Send {
            conversation: input.context.conversation,
            text: "x".into(),
        };
        // SAFETY: `send` is provided by the host with this signature (see the bench).
        let _id = unsafe { send(Json(message))? };
    }
    Ok(())
}
