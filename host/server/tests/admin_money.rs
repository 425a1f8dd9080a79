//! `minihost admin top-up` and `minihost admin ledger check` through the real binary, on every
//! backend: test money goes into a wallet checked and audited, bad input is refused naming the
//! problem, and the ledger check passes on sound books and fails, naming what is wrong, on
//! books changed behind the ledger's back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_store::testing::{TestDb, tamper};
use minihost_store::{AccountKind, StoreConfig};
use std::path::Path;
use std::process::{Command, Output};

/// `minihost admin ARGS` on the test database, run by operator `ops`.
fn admin(config: &StoreConfig, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minihost"));
    cmd.current_dir(dir)
        .arg("admin")
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("MINIHOST_DATA_DIR")
        .env_remove("RUST_LOG")
        .env("USER", "ops")
        .env("MINIHOST_PASSWORD", "password-of-someone");
    match config {
        StoreConfig::Sqlite { data_dir } => {
            cmd.arg("--data-dir").arg(data_dir);
        }
        StoreConfig::Url(url) => {
            cmd.env("DATABASE_URL", url);
        }
    }
    cmd.output().unwrap()
}

/// Stdout of a command that must succeed.
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Stdout and stderr of a command that must fail.
fn fails(out: Output) -> (String, String) {
    assert!(!out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn top_up_is_checked_and_audited_and_the_ledger_check_names_what_is_wrong() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for db in rt.block_on(TestDb::all()).unwrap() {
        let (c, dir) = (&db.config, tmp.path());
        ok(admin(c, dir, &["create-user", "--username", "alice"]));

        let out = ok(admin(c, dir, &["ledger", "check"]));
        assert!(out.contains("the books hold"), "{}: {out}", db.name);

        let out = ok(admin(c, dir, &["top-up", "alice", "1250", "EUR"]));
        assert_eq!(
            out.trim(),
            "topped up alice's EUR wallet by €12.50: balance €12.50",
            "{}",
            db.name
        );
        let out = ok(admin(c, dir, &["top-up", "alice", "50", "EUR"]));
        assert!(out.ends_with("balance €13.00\n"), "{out}");
        let out = ok(admin(c, dir, &["top-up", "alice", "700", "JPY"]));
        assert!(out.ends_with("balance ¥700\n"), "{out}");

        for (args, needle) in [
            (["top-up", "bob", "100", "EUR"], "no user named `bob`"),
            (["top-up", "alice", "0", "EUR"], "at least one minor unit"),
            (["top-up", "alice", "100000000001", "EUR"], "cap"),
            (["top-up", "alice", "100", "XXX"], "unknown currency `XXX`"),
            (["top-up", "alice", "100", "eur"], "unknown currency `eur`"),
            (["top-up", "alice", "-5", "EUR"], "-5"),
        ] {
            let (_, stderr) = fails(admin(c, dir, &args));
            assert!(stderr.contains(needle), "{args:?}: {stderr}");
        }

        let out = ok(admin(c, dir, &["ledger", "check"]));
        assert!(
            out.contains("EUR: accounts sum to 0 minor units: balances")
                && out.contains("JPY: accounts sum to 0 minor units: balances")
                && out.contains("the books hold"),
            "{}: {out}",
            db.name
        );

        let store = rt.block_on(db.open(None)).unwrap();
        let audit = rt.block_on(store.audit_entries("top_up", 10)).unwrap();
        assert_eq!(audit.len(), 3);
        assert!(audit.iter().all(|a| a.actor == "ops"), "{audit:?}");
        let alice = rt
            .block_on(store.user_by_username("alice"))
            .unwrap()
            .unwrap()
            .user;
        let wallet = rt
            .block_on(store.account(AccountKind::Wallet, alice.id.as_str(), "EUR"))
            .unwrap()
            .unwrap();
        assert_eq!(wallet.balance, 1_300);

        // A cent that appears from nowhere: the sum and the entries both say so.
        let sql = format!(
            "UPDATE accounts SET balance = balance + 1 WHERE id = '{}'",
            wallet.id
        );
        assert_eq!(rt.block_on(tamper(&store, &sql)).unwrap(), 1);
        rt.block_on(store.close());
        let (out, stderr) = fails(admin(c, dir, &["ledger", "check"]));
        assert!(
            out.contains("EUR: accounts sum to 1 minor units: DOES NOT BALANCE")
                && out.contains("JPY: accounts sum to 0 minor units: balances")
                && out.contains(&format!(
                    "balance differs from its entries: wallet account {} of {} holds 1301 EUR minor units",
                    wallet.id, alice.id
                ))
                && !out.contains("the books hold"),
            "{}: {out}",
            db.name
        );
        assert!(stderr.contains("the books do not hold"), "{stderr}");
        rt.block_on(db.cleanup()).unwrap();
    }
}
