//! Test guest for the runtime's fault tests: each `/command` misbehaves in one way (loop,
//! memory bomb, deep recursion, panic, huge reply, call flood, sleep) or probes the host
//! (fresh memory, typed capability errors, stdout capture, copy amplification).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use minihost_sdk::{
    App, Block, Card, Command, Content, Context, Error, Reply, Result, log, messaging, profile,
    storage,
};

/// State that must not survive between events.
static REMEMBERED: Mutex<Option<String>> = Mutex::new(None);
static COUNTER: AtomicU32 = AtomicU32::new(0);

struct Faults;

fn describe(result: Result<String>) -> String {
    match result {
        Ok(v) => format!("ok:{v}"),
        Err(Error::PermissionDenied(scope)) => format!("permission-denied:{scope}"),
        Err(Error::QuotaExceeded) => "quota-exceeded".to_string(),
        Err(Error::Invalid(why)) => format!("invalid:{why}"),
        Err(Error::Unavailable(what)) => format!("unavailable:{what}"),
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    // Not a tail call: the addition after the call keeps every frame alive.
    1 + recurse(std::hint::black_box(depth - 1)) + std::hint::black_box(0)
}

/// A card of `blocks` text blocks that all point at ONE guest string of `bytes` bytes: small
/// in the guest's memory, `blocks * bytes` once the host copies it out.
fn aliased_card(blocks: usize, bytes: usize) -> std::mem::ManuallyDrop<Content> {
    let mut text = std::mem::ManuallyDrop::new("a".repeat(bytes));
    let (ptr, len, cap) = (text.as_mut_ptr(), text.len(), text.capacity());
    let blocks = (0..blocks)
        .map(|_| {
            // SAFETY (test guest, on purpose hostile): every block aliases the same buffer.
            // Nothing writes to it or frees it: the card is never dropped.
            #[allow(unsafe_code)]
            let alias = unsafe { String::from_raw_parts(ptr, len, cap) };
            Block::Text(alias)
        })
        .collect();
    std::mem::ManuallyDrop::new(Content::Card(Card { blocks }))
}

impl App for Faults {
    fn on_command(ctx: &Context, command: Command) -> Result<Reply> {
        let reply = match command.name.as_str() {
            "ok" => "fine".to_string(),
            "loop" => {
                let mut i: u64 = 0;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => format!("{}", recurse(u64::MAX)),
            #[allow(clippy::panic)] // the point of this command
            "panic" => panic!("the guest panicked on purpose"),
            "huge" => {
                let mib: usize = command.args.parse().unwrap_or(4);
                "x".repeat(mib << 20)
            }
            "flood" => {
                let mut denied = 0u64;
                loop {
                    if messaging::budget(&ctx.conversation).is_err() {
                        denied += 1;
                    }
                    std::hint::black_box(denied);
                }
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(30));
                "woke up".to_string()
            }
            "remember" => {
                let mut slot = REMEMBERED.lock().unwrap_or_else(|e| e.into_inner());
                let before = slot.replace(command.args.clone());
                let n = COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
                format!("before={before:?} count={n}")
            }
            "send" => describe(messaging::reply(ctx, &Content::text("hello"))),
            "profile" => describe(profile::me(ctx).map(|p| p.display_name)),
            "log" => {
                for i in 0..command.args.parse::<u32>().unwrap_or(3) {
                    log::info(&format!("line {i}"));
                }
                "logged".to_string()
            }
            "print" => {
                println!("to stdout");
                eprintln!("to stderr");
                "printed".to_string()
            }
            "login" => describe(minihost_sdk::auth::login_code(command.args.trim())),
            "fail" => return Err(Error::invalid("failing on purpose")),
            // `/amplify TARGET BLOCKS KIB`: pass the host BLOCKS aliases of one KIB string.
            "amplify" => {
                let mut args = command.args.split_whitespace();
                let target = args.next().unwrap_or("reply").to_owned();
                let blocks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(112);
                let kib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
                let card = aliased_card(blocks, kib << 10);
                match target.as_str() {
                    "send" => describe(messaging::reply(ctx, &card)),
                    "update" => describe(messaging::update("m_0", &card).map(|()| String::new())),
                    "storage" => describe(
                        storage::set(storage::Bucket::Shared, "k", vec![b'a'; kib << 10])
                            .map(|()| String::new()),
                    ),
                    // The reply is moved out to the host; it must not be dropped here either.
                    _ => return Ok(Some(std::mem::ManuallyDrop::into_inner(card))),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(Content::text(reply)))
    }
}

minihost_sdk::export_app!(Faults);
