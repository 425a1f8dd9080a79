//! `minihost app run APP.wasm --command "/echo hi"`: one event through the real runtime (same
//! limits as the server) with simulated capabilities obeying `--grant`, printed for a human or
//! as JSON.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use minihost_cap_log::LogCapability;
use minihost_runtime::bindings::log::Level;
use minihost_runtime::bindings::{Action, Incoming, InputValue};
use minihost_runtime::{
    CallOutcome, Event, Invocation, InvocationReport, Limits, LoadedApp, Runtime, RuntimeBuilder,
    RuntimeConfig, Scopes,
};

use crate::render;
use crate::sim::{Shared, SimAuth, SimMessaging, SimPayments, SimProfile, SimStorage};

/// `minihost app run`: the event to simulate and the grant of the simulated user.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("event")
        .required(true)
        .args(["command", "action", "opened", "message"])
))]
pub struct RunArgs {
    /// The app component (a .wasm built for wasm32-wasip2).
    pub wasm: PathBuf,
    /// A slash command, e.g. "/echo hi".
    #[arg(long)]
    pub command: Option<String>,
    /// A button press on the app's card: the button's ID=VALUE.
    #[arg(long, value_name = "ID=VALUE")]
    pub action: Option<String>,
    /// With --action: the value of a card input, ID=VALUE (repeatable).
    #[arg(long = "input", value_name = "ID=VALUE", requires = "action")]
    pub inputs: Vec<String>,
    /// The user opens the app's panel.
    #[arg(long)]
    pub opened: bool,
    /// A plain message in the conversation.
    #[arg(long)]
    pub message: Option<String>,
    /// A scope the simulated user granted (repeatable): messages.send, profile.read,
    /// payments.request, storage, auth.login.
    #[arg(long = "grant", value_name = "SCOPE")]
    pub grants: Vec<String>,
    /// The app's miniapp.toml, which --grant is checked against (default: the nearest one in
    /// the folders above the component, up to its crate, else ./miniapp.toml).
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,
    /// The app id the app sees.
    #[arg(long, default_value = "sim-app")]
    pub app: String,
    /// The app-scoped id of the simulated user.
    #[arg(long, default_value = "u_sim")]
    pub user: String,
    /// The conversation of the event.
    #[arg(long, default_value = "c_sim")]
    pub conversation: String,
    /// The simulated user's locale.
    #[arg(long, default_value = "en")]
    pub locale: String,
    /// Memory cap in MiB (default: the platform's 32).
    #[arg(long)]
    pub memory_mib: Option<u32>,
    /// Deadline in milliseconds (default: the platform's 200).
    #[arg(long)]
    pub timeout_ms: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit code when the app fails (its error kind is printed).
const APP_FAILED: u8 = 1;
/// Exit code when the component cannot be loaded.
const LOAD_FAILED: u8 = 2;

/// The runtime `app run` and `app build` use: the server's defaults, every capability
/// simulated, and wasm backtraces in trap messages for the developer.
pub(crate) fn runtime(world: &Shared) -> anyhow::Result<Runtime> {
    let config = RuntimeConfig {
        max_instances: 4,
        wasm_backtrace_frames: 16,
        ..RuntimeConfig::default()
    };
    RuntimeBuilder::new(config)
        .with(LogCapability::default())
        .with(SimMessaging(world.clone()))
        .with(SimProfile)
        .with(SimPayments(world.clone()))
        .with(SimStorage(world.clone()))
        .with(SimAuth)
        .build()
        .context("starting the runtime")
}

/// Loads a component off the async threads (compiling is CPU-bound).
pub(crate) async fn load(
    runtime: &Runtime,
    wasm: Vec<u8>,
) -> anyhow::Result<Result<Arc<LoadedApp>, minihost_runtime::LoadError>> {
    let rt = runtime.clone();
    tokio::task::spawn_blocking(move || rt.load(&wasm))
        .await
        .context("the loader thread failed")
}

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let event = event(&args)?;
    for warning in grant_warnings(&args) {
        eprintln!("warning: {warning}");
    }
    let wasm =
        std::fs::read(&args.wasm).with_context(|| format!("reading {}", args.wasm.display()))?;
    let world = Shared::default();
    let runtime = runtime(&world)?;
    let app = match load(&runtime, wasm).await? {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: cannot load {}: {e}", args.wasm.display());
            return Ok(ExitCode::from(LOAD_FAILED));
        }
    };
    let mut limits = Limits::default();
    if let Some(mib) = args.memory_mib {
        limits.memory_bytes = (mib as usize) << 20;
    }
    if let Some(ms) = args.timeout_ms {
        limits.deadline = Duration::from_millis(ms.into());
    }
    let invocation = Invocation::new(&args.app, &args.user, &args.conversation)
        .locale(&args.locale)
        .grant(Scopes::new(args.grants.iter().cloned()))
        .limits(limits);
    let report = runtime.invoke(&app, invocation, event).await;

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json_report(&report, &world))?
        );
    } else {
        print_report(&report, &world);
    }
    match &report.outcome {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: the app failed: {}: {}", e.kind, e.message);
            Ok(ExitCode::from(APP_FAILED))
        }
    }
}

/// The event the flags describe.
fn event(args: &RunArgs) -> anyhow::Result<Event> {
    if let Some(text) = &args.command {
        let Some(rest) = text.trim().strip_prefix('/') else {
            bail!("--command must start with `/`, e.g. --command \"/echo hi\"");
        };
        let (name, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if name.is_empty() {
            bail!("--command needs a command name after `/`");
        }
        return Ok(Event::command(name, rest.trim()));
    }
    if let Some(action) = &args.action {
        let (id, value) = pair("--action", action)?;
        let inputs = args
            .inputs
            .iter()
            .map(|i| pair("--input", i).map(|(id, value)| InputValue { id, value }))
            .collect::<anyhow::Result<_>>()?;
        return Ok(Event::Action(Action {
            message: "sim-msg-0".into(),
            id,
            value,
            inputs,
        }));
    }
    if let Some(text) = &args.message {
        return Ok(Event::Message(Incoming {
            id: "sim-msg-0".into(),
            sender: args.user.clone(),
            text: text.clone(),
        }));
    }
    Ok(Event::Opened)
}

/// Where the app's manifest is: `--manifest`, else the nearest `miniapp.toml` in the folders
/// above the component up to the first one with a `Cargo.toml` (the crate or workspace that
/// built it), else `./miniapp.toml`.
fn find_manifest(args: &RunArgs) -> Option<PathBuf> {
    if let Some(path) = &args.manifest {
        return Some(path.clone());
    }
    if let Ok(wasm) = std::path::absolute(&args.wasm) {
        for dir in wasm.ancestors().skip(1) {
            let candidate = dir.join("miniapp.toml");
            if candidate.is_file() {
                return Some(candidate);
            }
            if dir.join("Cargo.toml").is_file() {
                break;
            }
        }
    }
    let here = PathBuf::from("miniapp.toml");
    here.is_file().then_some(here)
}

/// What is wrong with `--grant`: an unknown scope, or a scope the app's manifest does not
/// declare (no user can grant it on a server, so the local run would mislead).
fn grant_warnings(args: &RunArgs) -> Vec<String> {
    if args.grants.is_empty() {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    let mut scopes = Vec::new();
    for grant in &args.grants {
        match grant.parse::<minihost_core::Scope>() {
            Ok(scope) => scopes.push(scope),
            Err(e) => warnings.push(format!("--grant {grant}: {e}")),
        }
    }
    let Some(path) = find_manifest(args) else {
        warnings.push(format!(
            "--grant is not checked: no miniapp.toml above {} or in the current folder \
             (name it with --manifest)",
            args.wasm.display()
        ));
        return warnings;
    };
    let manifest = match std::fs::read_to_string(&path) {
        Err(e) => Err(e.to_string()),
        Ok(text) => minihost_manifest::parse(&text).map_err(|e| e.to_string()),
    };
    match manifest {
        Err(e) => warnings.push(format!(
            "--grant is not checked: cannot read {}: {e}",
            path.display()
        )),
        Ok(manifest) => {
            for scope in scopes {
                if !manifest.scopes.iter().any(|r| r.scope == scope) {
                    warnings.push(format!(
                        "--grant {scope}: {} does not declare the scope `{scope}`, so no user \
                         can grant it to this app on a server",
                        path.display()
                    ));
                }
            }
        }
    }
    warnings
}

fn pair(flag: &str, s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{flag} takes ID=VALUE, got `{s}`"),
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

fn outcome_text(outcome: &CallOutcome) -> String {
    match outcome {
        CallOutcome::Ok => "ok".into(),
        CallOutcome::Denied(scope) => format!("denied (scope `{scope}` not granted)"),
        CallOutcome::Failed(e) => format!("error: {e}"),
        CallOutcome::Aborted(kind) => format!("aborted: {kind}"),
    }
}

fn print_report(report: &InvocationReport, world: &Shared) {
    for call in &report.calls {
        println!(
            "call  {}.{} -> {}  ({:.3} ms)",
            call.interface,
            call.function,
            outcome_text(&call.outcome),
            call.duration.as_secs_f64() * 1e3
        );
    }
    let world = world.lock();
    for (id, conversation, content) in &world.sent {
        println!("sent  {id} to {conversation}: {}", render::to_text(content));
    }
    for (id, content) in &world.updated {
        println!("updated  {id}: {}", render::to_text(content));
    }
    for (id, order) in &world.payments {
        println!(
            "payment request  {id}: {} {} for {:?} (the simulated user does not confirm)",
            order.amount, order.currency, order.description
        );
    }
    for line in &report.logs {
        println!("log   [{}] {}", level_name(line.level), line.message);
    }
    if report.logs_dropped > 0 {
        println!("log   ({} lines dropped)", report.logs_dropped);
    }
    for (name, text) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        for line in text.lines() {
            println!("{name}  {line}");
        }
    }
    match &report.outcome {
        Ok(Some(content)) => println!("reply: {}", render::to_text(content)),
        Ok(None) => println!("reply: (none)"),
        Err(_) => {}
    }
    println!(
        "({} event, {:.2} ms, fuel {})",
        report.event,
        report.duration.as_secs_f64() * 1e3,
        report.fuel_consumed
    );
}

fn json_report(report: &InvocationReport, world: &Shared) -> serde_json::Value {
    use serde_json::json;
    let outcome = match &report.outcome {
        Ok(reply) => json!({"ok": reply.as_ref().map(render::to_json)}),
        Err(e) => json!({"error": {"kind": e.kind.as_str(), "message": e.message}}),
    };
    let world = world.lock();
    json!({
        "event": report.event,
        "outcome": outcome,
        "duration_us": report.duration.as_micros() as u64,
        "fuel": report.fuel_consumed,
        "calls": report.calls.iter().map(|c| json!({
            "interface": c.interface.name(),
            "function": c.function,
            "outcome": c.outcome.as_str(),
            "detail": outcome_text(&c.outcome),
            "duration_us": c.duration.as_micros() as u64,
        })).collect::<Vec<_>>(),
        "sent": world.sent.iter().map(|(id, conversation, content)| json!({
            "id": id, "conversation": conversation, "content": render::to_json(content),
        })).collect::<Vec<_>>(),
        "payments": world.payments.iter().map(|(id, o)| json!({
            "id": id, "amount": o.amount, "currency": o.currency, "description": o.description,
        })).collect::<Vec<_>>(),
        "logs": report.logs.iter().map(|l| json!({
            "level": level_name(l.level), "message": l.message,
        })).collect::<Vec<_>>(),
        "logs_dropped": report.logs_dropped,
        "stdout": report.stdout,
        "stderr": report.stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use minihost_runtime::{Content, ErrorKind};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RunArgs,
    }

    fn args(argv: &[&str]) -> RunArgs {
        let mut full = vec!["run", minihost_guest_artifacts::FAULTS];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).unwrap().args
    }

    #[test]
    fn flags_make_events() {
        assert_eq!(
            event(&args(&["--command", "/echo  hi there "])).unwrap(),
            Event::command("echo", "hi there")
        );
        assert_eq!(
            event(&args(&["--command", "/ping"])).unwrap(),
            Event::command("ping", "")
        );
        assert!(event(&args(&["--command", "echo"])).is_err());
        assert_eq!(event(&args(&["--opened"])).unwrap(), Event::Opened);
        let Event::Action(a) = event(&args(&["--action", "yes=1", "--input", "c=hi"])).unwrap()
        else {
            panic!("not an action")
        };
        assert_eq!((a.id.as_str(), a.value.as_str()), ("yes", "1"));
        assert_eq!(
            a.inputs,
            [InputValue {
                id: "c".into(),
                value: "hi".into()
            }]
        );
        assert!(event(&args(&["--action", "novalue"])).is_err());
        // Exactly one event.
        let both = Cli::try_parse_from(["run", "x.wasm", "--opened", "--command", "/a"]);
        assert!(both.is_err());
        assert!(Cli::try_parse_from(["run", "x.wasm"]).is_err());
    }

    const DECLARES_SEND: &str = "id = \"demo\"\nname = \"Demo\"\nversion = \"0.1.0\"\n\
        description = \"d\"\n[[scopes]]\nname = \"messages.send\"\nreason = \"Replies.\"\n";

    /// Lays out `files` (path, text) in a fresh folder, runs `app run WASM ARGV...` there (paths
    /// relative to it) and compares each `--grant` warning with the expected start of it
    /// (`{dir}` stands for the folder).
    fn check_grants(files: &[(&str, &str)], wasm: &str, argv: &[&str], expected: &[&str]) {
        let tmp = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = tmp.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let dir = tmp.path().display().to_string();
        let wasm = tmp.path().join(wasm);
        let argv: Vec<String> = argv.iter().map(|a| a.replace("{dir}", &dir)).collect();
        let mut full = vec!["run", wasm.to_str().unwrap(), "--command", "/demo"];
        full.extend(argv.iter().map(String::as_str));
        let warnings = grant_warnings(&Cli::try_parse_from(full).unwrap().args);
        let expected: Vec<String> = expected.iter().map(|e| e.replace("{dir}", &dir)).collect();
        assert_eq!(warnings.len(), expected.len(), "{warnings:#?}");
        for (got, want) in warnings.iter().zip(&expected) {
            assert!(
                got.starts_with(want.as_str()),
                "{got:?}\ndoes not start with\n{want:?}"
            );
        }
    }

    #[test]
    fn grants_are_checked_against_the_manifest() {
        let app = [
            ("demo/Cargo.toml", "[package]"),
            ("demo/miniapp.toml", DECLARES_SEND),
        ];
        let wasm = "demo/target/wasm32-wasip2/release/demo.wasm";
        check_grants(&app, wasm, &[], &[]);
        check_grants(&app, wasm, &["--grant", "messages.send"], &[]);
        check_grants(
            &app,
            wasm,
            &["--grant", "messages.send", "--grant", "storage"],
            &["--grant storage: {dir}/demo/miniapp.toml does not declare the scope `storage`"],
        );
        check_grants(
            &app,
            wasm,
            &["--grant", "mesages.send"],
            &["--grant mesages.send: unknown scope `mesages.send`"],
        );
        // A component kept elsewhere: the manifest is named.
        check_grants(
            &app,
            "dist/demo.wasm",
            &[
                "--grant",
                "profile.read",
                "--manifest",
                "{dir}/demo/miniapp.toml",
            ],
            &["--grant profile.read: {dir}/demo/miniapp.toml does not declare"],
        );
        // The search stops at the crate that built the component.
        check_grants(
            &[
                ("ws/Cargo.toml", "[workspace]"),
                ("miniapp.toml", DECLARES_SEND),
            ],
            "ws/target/wasm32-wasip2/release/demo.wasm",
            &["--grant", "storage"],
            &["--grant is not checked: no miniapp.toml above"],
        );
        check_grants(
            &[
                ("demo/Cargo.toml", "[package]"),
                ("demo/miniapp.toml", "id = 1"),
            ],
            wasm,
            &["--grant", "storage"],
            &["--grant is not checked: cannot read {dir}/demo/miniapp.toml"],
        );
    }

    async fn simulate(command: &str, grants: &[&str]) -> (InvocationReport, Shared) {
        let world = Shared::default();
        let rt = runtime(&world).unwrap();
        let wasm = std::fs::read(minihost_guest_artifacts::FAULTS).unwrap();
        let app = load(&rt, wasm).await.unwrap().unwrap();
        let inv =
            Invocation::new("sim-app", "u_sim", "c_sim").grant(Scopes::new(grants.iter().copied()));
        let report = rt.invoke(&app, inv, Event::command(command, "")).await;
        (report, world)
    }

    #[tokio::test]
    async fn simulated_capabilities_obey_the_grant() {
        let (denied, world) = simulate("send", &[]).await;
        assert_eq!(
            denied.outcome,
            Ok(Some(Content::text("permission-denied:messages.send")))
        );
        assert!(world.lock().sent.is_empty());

        let (sent, world) = simulate("send", &["messages.send"]).await;
        assert_eq!(sent.outcome, Ok(Some(Content::text("ok:sim-msg-1"))));
        let json = json_report(&sent, &world);
        assert_eq!(json["sent"][0]["conversation"], "c_sim");
        assert_eq!(
            json["sent"][0]["content"],
            serde_json::json!({"type": "text", "text": "hello"})
        );
        assert_eq!(json["calls"][0]["outcome"], "ok");

        let (profile, _) = simulate("profile", &["profile.read"]).await;
        assert_eq!(
            profile.outcome,
            Ok(Some(Content::text("ok:Simulated User")))
        );
    }

    #[tokio::test]
    async fn failures_carry_their_kind() {
        let (report, world) = simulate("panic", &[]).await;
        assert_eq!(report.error_kind(), Some(&ErrorKind::Trap));
        let json = json_report(&report, &world);
        assert_eq!(json["outcome"]["error"]["kind"], "trap");
    }
}
