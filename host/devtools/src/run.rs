//! `minihost app run APP.wasm --command "/echo hi"`: one event run as a server runs it. The
//! component and its miniapp.toml are uploaded into a throwaway messenger (the
//! [`Simulator`]), the simulated user grants the `--grant` scopes, and the event goes through
//! the server's dispatch: the manifest's commands, scopes and limits, the platform's budgets and
//! quotas, real message storage. The result is printed for a human or as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use minihost_runtime::{CallOutcome, Event, InvocationReport};

use crate::{SimRequest, SimResult, Simulator};

/// `minihost app run`: the event to simulate and the grant of the simulated user.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("event")
        .required(true)
        .args(["command", "opened"])
))]
pub struct RunArgs {
    /// The app component (a .wasm built for wasm32-wasip2).
    pub wasm: PathBuf,
    /// A slash command, e.g. "/echo hi" (miniapp.toml must declare it, as on a server).
    #[arg(long)]
    pub command: Option<String>,
    /// The user opens the app's panel.
    #[arg(long)]
    pub opened: bool,
    /// Then press the button ID on the card the app answered with.
    #[arg(long, value_name = "ID")]
    pub action: Option<String>,
    /// With --action: the value of a card input, ID=VALUE (repeatable).
    #[arg(long = "input", value_name = "ID=VALUE", requires = "action")]
    pub inputs: Vec<String>,
    /// A scope the simulated user granted (repeatable); miniapp.toml must declare it, as no
    /// user can grant anything else on a server.
    #[arg(long = "grant", value_name = "SCOPE")]
    pub grants: Vec<String>,
    /// The app's miniapp.toml (default: the nearest one in the folders above the component, up
    /// to its crate, else ./miniapp.toml).
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit code when the app fails (its error kind is printed).
const APP_FAILED: u8 = 1;
/// Exit code when a server would refuse the app or the run (or the component cannot be read).
const REFUSED: u8 = 2;

pub(crate) async fn run(args: RunArgs, simulator: &dyn Simulator) -> anyhow::Result<ExitCode> {
    let event = event(&args)?;
    let then_press = match &args.action {
        None => None,
        Some(button) => {
            let inputs = args
                .inputs
                .iter()
                .map(|i| pair("--input", i))
                .collect::<anyhow::Result<_>>()?;
            Some((button.clone(), inputs))
        }
    };
    let Some(manifest_path) = find_manifest(&args) else {
        eprintln!(
            "error: no miniapp.toml above {} or in the current folder (name it with --manifest): \
             a server runs an app only with its manifest",
            args.wasm.display()
        );
        return Ok(ExitCode::from(REFUSED));
    };
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let component =
        std::fs::read(&args.wasm).with_context(|| format!("reading {}", args.wasm.display()))?;
    let request = SimRequest {
        manifest,
        component,
        grants: args.grants.clone(),
        event,
        then_press,
    };
    let result = match simulator.simulate(request).await? {
        Ok(result) => result,
        Err(refusal) => {
            eprintln!(
                "error: a server would refuse this ({} with {}): {refusal}",
                args.wasm.display(),
                manifest_path.display()
            );
            return Ok(ExitCode::from(REFUSED));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json_result(&result))?);
    } else {
        print_result(&result);
    }
    let failed = result
        .reports
        .iter()
        .zip(&result.rejected)
        .find_map(|(r, rejected)| match (&r.outcome, rejected) {
            (Err(e), _) => Some(format!("{}: {}", e.kind, e.message)),
            (Ok(_), Some(why)) => Some(format!("reply_rejected: {why}")),
            _ => None,
        });
    match failed {
        None => Ok(ExitCode::SUCCESS),
        Some(why) => {
            eprintln!("error: the app failed: {why}");
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
    Ok(Event::Opened)
}

/// Where the app's manifest is: `--manifest`, else the nearest `miniapp.toml` in the folders
/// above the component up to the first one with a `Cargo.toml` or `package.json` (the crate,
/// workspace or npm package that built it), else `./miniapp.toml`.
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
            if dir.join("Cargo.toml").is_file() || dir.join("package.json").is_file() {
                break;
            }
        }
    }
    let here = PathBuf::from("miniapp.toml");
    here.is_file().then_some(here)
}

fn pair(flag: &str, s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{flag} takes ID=VALUE, got `{s}`"),
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

fn print_report(report: &InvocationReport, rejected: Option<&String>, notice: Option<&String>) {
    for call in &report.calls {
        println!(
            "call  {}.{} -> {}  ({:.3} ms)",
            call.interface,
            call.function,
            outcome_text(&call.outcome),
            call.duration.as_secs_f64() * 1e3
        );
    }
    for line in &report.logs {
        println!("log   [{}] {}", line.level_name(), line.message);
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
        Ok(Some(content)) => println!("reply: {}", crate::render::to_text(content)),
        Ok(None) => println!("reply: (none)"),
        Err(e) => println!("failed: {}: {}", e.kind, e.message),
    }
    if let Some(why) = rejected {
        println!("rejected: the messenger refused the reply: {why}");
    }
    if let Some(notice) = notice {
        println!("the user reads: {notice}");
    }
    println!(
        "({} event, {:.2} ms, {:.2} ms queued, fuel {})",
        report.event,
        report.duration.as_secs_f64() * 1e3,
        report.queued.as_secs_f64() * 1e3,
        report.fuel_consumed
    );
}

fn print_result(result: &SimResult) {
    for (i, report) in result.reports.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print_report(
            report,
            result.rejected.get(i).and_then(Option::as_ref),
            result.notices.get(i).and_then(Option::as_ref),
        );
    }
    if !result.messages.is_empty() {
        println!();
    }
    for message in &result.messages {
        println!(
            "message {} in the conversation: {}",
            message.id,
            crate::render::core_to_text(&message.content)
        );
    }
    for p in &result.payments {
        println!(
            "payment request {}: {} for {:?} ({}; the simulated user does not answer it)",
            p.id, p.amount_text, p.description, p.state
        );
    }
}

fn json_report(
    report: &InvocationReport,
    rejected: Option<&String>,
    notice: Option<&String>,
) -> serde_json::Value {
    use serde_json::json;
    let outcome = match &report.outcome {
        Ok(reply) => json!({"ok": reply.as_ref().map(crate::render::to_json)}),
        Err(e) => json!({"error": {"kind": e.kind.as_str(), "message": e.message}}),
    };
    json!({
        "event": report.event,
        "outcome": outcome,
        "rejected": rejected,
        "notice": notice,
        "duration_us": report.duration.as_micros() as u64,
        "queued_us": report.queued.as_micros() as u64,
        "fuel": report.fuel_consumed,
        "calls": report.calls.iter().map(|c| json!({
            "interface": c.interface.name(),
            "function": c.function,
            "outcome": c.outcome.as_str(),
            "detail": outcome_text(&c.outcome),
            "duration_us": c.duration.as_micros() as u64,
        })).collect::<Vec<_>>(),
        "logs": report.logs.iter().map(|l| json!({
            "level": l.level_name(), "message": l.message,
        })).collect::<Vec<_>>(),
        "logs_dropped": report.logs_dropped,
        "stdout": report.stdout,
        "stderr": report.stderr,
    })
}

/// The JSON form of a run: `runs` (one per event) and `messages` (what the conversation
/// holds from the app).
fn json_result(result: &SimResult) -> serde_json::Value {
    let runs: Vec<_> = result
        .reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json_report(
                r,
                result.rejected.get(i).and_then(Option::as_ref),
                result.notices.get(i).and_then(Option::as_ref),
            )
        })
        .collect();
    let messages: Vec<_> = result
        .messages
        .iter()
        .map(|m| serde_json::json!({"id": m.id, "content": m.content}))
        .collect();
    let payments: Vec<_> = result
        .payments
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id, "amount": p.amount, "currency": p.currency,
                "amount_text": p.amount_text, "description": p.description, "state": p.state,
            })
        })
        .collect();
    serde_json::json!({"runs": runs, "messages": messages, "payments": payments})
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RunArgs,
    }

    fn args(argv: &[&str]) -> RunArgs {
        let mut full = vec!["run", "app.wasm"];
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
        assert!(event(&args(&["--command", "/"])).is_err());
        assert_eq!(event(&args(&["--opened"])).unwrap(), Event::Opened);
        // A button press follows an event that answered with a card.
        let press = args(&["--command", "/card", "--action", "yes", "--input", "c=hi"]);
        assert_eq!(press.action.as_deref(), Some("yes"));
        assert_eq!(
            pair("--input", &press.inputs[0]).unwrap(),
            ("c".into(), "hi".into())
        );
        assert!(pair("--input", "novalue").is_err());
        // Exactly one event.
        assert!(Cli::try_parse_from(["run", "x.wasm", "--opened", "--command", "/a"]).is_err());
        assert!(Cli::try_parse_from(["run", "x.wasm"]).is_err());
        assert!(Cli::try_parse_from(["run", "x.wasm", "--action", "yes"]).is_err());
    }

    /// Lays out `files` (path, text) in a fresh folder and returns the manifest `app run` would
    /// use for a component at `wasm` with `argv`, relative to that folder.
    fn manifest_for(files: &[(&str, &str)], wasm: &str, argv: &[&str]) -> Option<PathBuf> {
        let tmp = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = tmp.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let wasm = tmp.path().join(wasm);
        let dir = tmp.path().display().to_string();
        let argv: Vec<String> = argv.iter().map(|a| a.replace("{dir}", &dir)).collect();
        let mut full = vec!["run", wasm.to_str().unwrap(), "--opened"];
        full.extend(argv.iter().map(String::as_str));
        find_manifest(&Cli::try_parse_from(full).unwrap().args)
            .map(|p| p.strip_prefix(tmp.path()).map(PathBuf::from).unwrap_or(p))
    }

    #[test]
    fn the_manifest_is_found_beside_the_crate_that_built_the_component() {
        let app = [("demo/Cargo.toml", "[package]"), ("demo/miniapp.toml", "x")];
        let wasm = "demo/target/wasm32-wasip2/release/demo.wasm";
        assert_eq!(
            manifest_for(&app, wasm, &[]),
            Some(PathBuf::from("demo/miniapp.toml"))
        );
        // A component kept elsewhere: the manifest is named.
        assert_eq!(
            manifest_for(
                &app,
                "dist/demo.wasm",
                &["--manifest", "{dir}/demo/miniapp.toml"]
            ),
            Some(PathBuf::from("demo/miniapp.toml"))
        );
        // The search stops at the crate that built the component.
        assert_eq!(
            manifest_for(
                &[("ws/Cargo.toml", "[workspace]"), ("miniapp.toml", "x")],
                "ws/target/wasm32-wasip2/release/demo.wasm",
                &[]
            ),
            None
        );
    }
}
