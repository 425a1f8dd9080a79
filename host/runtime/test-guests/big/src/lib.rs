//! Test guest for the cold-start bench (`load/*/big` in `host/runtime/benches/invoke.rs`):
//! about 1 MiB of component, made of generated functions and a data table (see `build.rs`),
//! all reachable so the linker keeps them. Any command mixes one table byte through one
//! function and returns nothing.

use minihost_sdk::{App, Command, Context, Reply, Result};

include!(concat!(env!("OUT_DIR"), "/functions.rs"));

static TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/table.bin"));

struct Big;

impl App for Big {
    fn on_command(_ctx: &Context, command: Command) -> Result<Reply> {
        let i = std::hint::black_box(command.args.len() + command.name.len());
        let byte = TABLE.get(i % TABLE.len()).copied().unwrap_or(0);
        let f = FUNCTIONS.get(i % FUNCTIONS.len()).copied().unwrap_or(|x| x);
        std::hint::black_box(f(u64::from(byte)));
        Ok(None)
    }
}

minihost_sdk::export_app!(Big);
