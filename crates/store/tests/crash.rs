//! Atomicity and durability across SIGKILL: a child process (`clos-store-crashtest`) commits
//! transactions in a loop and is killed at arbitrary points; after each kill the store must
//! hold every acknowledged transaction, at most one more, and no partial one, and its change
//! log must replay every revision whole.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use clos_store::{Event, KeyRange, RangeRequest, RedbStore, Store};

const ROUNDS: u64 = 6;

#[test]
fn sigkill_never_leaves_half_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut recovered = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clos-store-crashtest"))
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start clos-store-crashtest");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = recovered;
        let target = recovered + 10 + 7 * round;
        while acked < target {
            let line = lines
                .next()
                .expect("crashtest exited early (its stderr is above)")
                .unwrap();
            let n: u64 = line.parse().unwrap();
            assert_eq!(n, acked + 1, "acknowledgements are consecutive");
            acked = n;
        }
        // Vary the moment of the kill within the commit loop.
        std::thread::sleep(Duration::from_micros(round * 1700));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Acknowledgements written before the kill still count.
        for line in lines {
            let n: u64 = line.unwrap().parse().unwrap();
            assert_eq!(n, acked + 1);
            acked = n;
        }

        recovered = check_store(&data);
        eprintln!("round {round}: {acked} acknowledged, {recovered} recovered");
        assert!(
            recovered == acked || recovered == acked + 1,
            "round {round}: store has {recovered} transactions, {acked} were acknowledged"
        );
    }
    assert!(recovered >= (0..ROUNDS).map(|r| 10 + 7 * r).sum::<u64>());
}

/// Checks the invariants of a store the crashtest wrote; returns its counter.
fn check_store(data: &Path) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Dropping the runtime waits for the store's blocking work, so the file is closed when
    // this returns and the next child can open it.
    rt.block_on(async {
        let store = RedbStore::open(data).await.expect("reopen after SIGKILL");
        let text = |kv: Option<clos_store::KeyValue>| {
            String::from_utf8(kv.expect("key present").value.to_vec()).unwrap()
        };
        let n: u64 = text(store.get("n".into()).await.unwrap()).parse().unwrap();
        let a = text(store.get("a".into()).await.unwrap());
        let b = text(store.get("b".into()).await.unwrap());
        assert_eq!(a, b, "a and b are written by the same transactions");
        assert!(
            a.starts_with(&format!("{n}:")),
            "a belongs to transaction {n}"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            n,
            "one revision per transaction"
        );

        let hist = store
            .range(RangeRequest::new(KeyRange::prefix("hist/")))
            .await
            .unwrap();
        let want: Vec<String> = (n.saturating_sub(7).max(1)..=n)
            .map(|i| format!("hist/{i:010}"))
            .collect();
        let got: Vec<String> = hist
            .kvs
            .iter()
            .map(|kv| String::from_utf8(kv.key.to_vec()).unwrap())
            .collect();
        assert_eq!(got, want);

        // The change log replays every revision, each with all of its events.
        let mut w = store.watch(KeyRange::all(), 1).await.unwrap();
        for rev in 1..=n {
            let resp = tokio::time::timeout(Duration::from_secs(10), w.recv())
                .await
                .expect("log replay in time")
                .expect("watch open")
                .expect("log readable");
            assert_eq!(resp.revision, rev);
            let puts = resp
                .events
                .iter()
                .filter(|e| matches!(e, Event::Put { .. }))
                .count();
            let deletes = resp.events.len() - puts;
            assert_eq!(puts, 4, "revision {rev}");
            assert_eq!(deletes, usize::from(rev > 8), "revision {rev}");
            let Event::Put { kv, .. } = &resp.events[0] else {
                panic!("revision {rev} starts with {:?}", resp.events[0])
            };
            assert_eq!(kv.value, rev.to_string().as_bytes());
        }
        n
    })
}
