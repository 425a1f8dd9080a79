//! The cluster against a real NATS: events and invalidations cross between two nodes' hubs
//! (and are not echoed back to their own), a joining node asks the others to resync, and a node
//! whose NATS restarts resyncs its sessions and drops its caches. The first two use the NATS of
//! `MINIHOST_TEST_NATS` (default `nats://127.0.0.1:4222`), the last one a `nats-server` of its
//! own; each is skipped, saying why, when it has none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_cluster::testing::OwnNats;
use minihost_cluster::{Cluster, NatsOptions};
use minihost_core::{ConversationId, UserId};
use minihost_hub::{Event, Invalidation, LocalHub, Subscriber, Topic};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(20);

fn shared_nats() -> Option<String> {
    let url =
        std::env::var("MINIHOST_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let addr = url.trim_start_matches("nats://").to_owned();
    match std::net::TcpStream::connect(addr.as_str()) {
        Ok(_) => Some(url),
        Err(e) => {
            eprintln!("skipped: NATS is not reachable at {url}: {e}");
            None
        }
    }
}

fn prefix() -> String {
    format!("mhtest_{}", minihost_core::ids::random_hex(6))
}

/// The next event `sub` gets (within [`PATIENCE`]).
async fn next(sub: &mut Subscriber) -> Event {
    tokio::time::timeout(PATIENCE, sub.recv())
        .await
        .expect("no event arrived")
        .expect("the subscriber was cut off")
}

async fn node(url: &str, prefix: &str) -> (Arc<LocalHub>, Cluster, Arc<Mutex<Vec<Invalidation>>>) {
    let hub = LocalHub::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    hub.on_invalidate(move |w| s.lock().unwrap().push(w.clone()));
    let cluster = Cluster::connect(
        &NatsOptions {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
        },
        hub.clone(),
        Arc::new(minihost_metrics::Metrics::new().unwrap()),
    )
    .await
    .unwrap();
    (hub, cluster, seen)
}

#[tokio::test]
async fn events_and_invalidations_cross_nodes_once() {
    let Some(url) = shared_nats() else { return };
    let prefix = prefix();
    let (hub1, one, seen1) = node(&url, &prefix).await;
    let mut sub1 = hub1.subscriber();
    let (hub2, two, seen2) = node(&url, &prefix).await;
    // Node two joined: node one's sessions are asked to resync.
    assert!(matches!(next(&mut sub1).await, Event::Resync));

    let user = Topic::User(UserId::from_string("u_1"));
    let mut sub2 = hub2.subscriber();
    sub2.subscribe(user.clone());
    sub1.subscribe(user.clone());
    // A subscription is in place on both nodes before anything is published (one wildcard
    // subscription per node, made at connect): publish from one, receive on both, once each.
    one.fanout().publish(
        user.clone(),
        Event::Joined(ConversationId::from_string("c_9")),
    );
    for sub in [&mut sub1, &mut sub2] {
        match next(sub).await {
            Event::Joined(c) => assert_eq!(c.as_str(), "c_9"),
            other => panic!("{other:?}"),
        }
    }
    let what = Invalidation::AppChanged { app: "echo".into() };
    two.fanout().invalidate(what.clone());
    let deadline = Instant::now() + PATIENCE;
    while seen1.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the invalidation did not arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*seen1.lock().unwrap(), vec![what.clone()]);
    // Node two told its own listeners once, at once; NATS did not echo it back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*seen2.lock().unwrap(), vec![what]);
    assert!(
        futures_util::FutureExt::now_or_never(sub1.recv()).is_none(),
        "nothing else reached node one"
    );
    assert!(one.connected() && two.connected());
}

#[tokio::test]
async fn a_node_whose_nats_restarts_resyncs_and_drops_its_caches() {
    let Some(mut nats) = OwnNats::start() else {
        return;
    };
    let url = nats.url();
    let (hub, cluster, seen) = node(&url, &prefix()).await;
    let mut sub = hub.subscriber();
    assert!(cluster.connected());
    nats.down();
    let deadline = Instant::now() + PATIENCE;
    while cluster.connected() {
        assert!(
            Instant::now() < deadline,
            "the disconnection was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nats.up().unwrap();
    assert!(matches!(next(&mut sub).await, Event::Resync));
    assert!(cluster.connected());
    assert_eq!(*seen.lock().unwrap(), vec![Invalidation::Everything]);
}
