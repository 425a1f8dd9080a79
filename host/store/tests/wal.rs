//! The SQLite WAL under continuous writing: commits never pause long enough for a passive
//! checkpoint to find the WAL fully copied, so SQLite would never start it over by itself. The
//! checkpointer's `RESTART` checkpoint must start it over while messages keep coming, so the
//! file stays bounded, and nothing written meanwhile is lost or renumbered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::user;

use minihost_core::{Content, ConversationId, Sender};
use minihost_store::testing::TestDb;
use minihost_store::{HistoryQuery, NewMessage, StoreConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The WAL's checkpoint sequence number (bytes 12..16 of its header, big-endian): SQLite
/// increments it each time the WAL is started over.
fn wal_generation(wal: &std::path::Path) -> Option<u32> {
    let bytes = std::fs::read(wal).ok()?;
    let field: [u8; 4] = bytes.get(12..16)?.try_into().ok()?;
    Some(u32::from_be_bytes(field))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_continuous_writing_and_stays_bounded() {
    let db = TestDb::sqlite().unwrap();
    let StoreConfig::Sqlite { data_dir } = &db.config else {
        panic!("a SQLite test database has a data directory");
    };
    let wal = data_dir.join("minihost.db-wal");
    let store = Arc::new(db.open(None).await.unwrap());
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let mut groups = Vec::new();
    for i in 0..20 {
        let g = store
            .create_group(&alice.id, &format!("g{i}"), std::slice::from_ref(&bob.id))
            .await
            .unwrap();
        groups.push(g.id);
    }
    let groups: Arc<Vec<ConversationId>> = Arc::new(groups);

    // Writers that never pause, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..16usize {
        let (store, groups, stop, sent) =
            (store.clone(), groups.clone(), stop.clone(), sent.clone());
        let sender = Sender::User {
            id: alice.id.clone(),
            username: alice.username.to_string(),
        };
        writers.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let conv = groups[i % groups.len()].clone();
                store
                    .append(NewMessage {
                        conversation: conv,
                        sender: sender.clone(),
                        content: Content::text(format!("message {i} {}", "x".repeat(300))),
                        idempotency_key: None,
                        budget: None,
                    })
                    .await
                    .unwrap();
                sent.fetch_add(1, Ordering::Relaxed);
                i += 16;
            }
        }));
    }

    // Watch the WAL until it was started over twice while the writers kept going (or give up
    // after far more messages than that takes: ~8,000 in a debug build on 2 cores).
    let first = loop {
        if let Some(g) = wal_generation(&wal) {
            break g;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut largest = 0u64;
    let mut restarts = 0;
    let mut last = first;
    while restarts < 2 && sent.load(Ordering::Relaxed) < 60_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        if let Some(g) = wal_generation(&wal)
            && g != last
        {
            restarts += 1;
            last = g;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let total = sent.load(Ordering::Relaxed);
    assert!(
        restarts >= 2,
        "the WAL was started over {restarts} times in {total} messages (largest {largest} bytes)"
    );
    // The restart threshold is 16 MiB; what lands during one checkpoint interval comes on top.
    assert!(
        largest < 48 << 20,
        "the WAL grew to {largest} bytes while being restarted"
    );

    // Every acknowledged message is there, numbered without gaps, in every conversation.
    let mut stored = 0u64;
    for conv in groups.iter() {
        let mut after = 0;
        loop {
            let page = store
                .history(
                    conv,
                    HistoryQuery {
                        before: None,
                        after: Some(after),
                        limit: 500,
                    },
                )
                .await
                .unwrap();
            for m in &page {
                assert_eq!(m.seq, after + 1, "a gap in {conv}");
                after = m.seq;
            }
            stored += page.len() as u64;
            if page.len() < 500 {
                break;
            }
        }
    }
    assert_eq!(stored, total);
    store.close().await;
    db.cleanup().await.unwrap();
}
