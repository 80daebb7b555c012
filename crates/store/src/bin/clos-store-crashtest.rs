//! Test helper for `tests/crash.rs`, not part of the product.
//!
//! Runs transactions against the store in the data directory given as the only argument, until
//! killed. Each transaction, guarded by compare-and-swap on the counter key `n`, sets `n`, `a`
//! and `b` to the next counter value (`a` and `b` padded to span several pages), adds
//! `hist/<n>` and deletes `hist/<n - 8>`. After each commit returns, the new counter value is
//! printed on its own line. The test kills this process with SIGKILL and checks that the store
//! holds whole transactions only and every acknowledged one.

use std::io::Write;
use std::process::ExitCode;

use clos_store::{Compare, CompareOp, Op, RedbStore, Store, Txn};

/// Bytes of padding in `a` and `b`, so a transaction writes more than one page.
const PAD: usize = 6000;

fn hist_key(n: u64) -> String {
    format!("hist/{n:010}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: clos-store-crashtest DATA_DIR");
        return ExitCode::from(2);
    };
    match run(dir.into()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clos-store-crashtest: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(dir: std::path::PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let store = RedbStore::open(dir).await?;
    let mut stdout = std::io::stdout();
    loop {
        let (n, rev) = match store.get("n".into()).await? {
            Some(kv) => (
                std::str::from_utf8(&kv.value)?.parse::<u64>()?,
                kv.mod_revision,
            ),
            None => (0, 0),
        };
        let next = n + 1;
        let padded = format!("{next}:{}", "x".repeat(PAD));
        let mut ops = vec![
            Op::put("n", next.to_string()),
            Op::put("a", padded.clone()),
            Op::put("b", padded),
            Op::put(hist_key(next), next.to_string()),
        ];
        if next > 8 {
            ops.push(Op::delete(hist_key(next - 8)));
        }
        let resp = store
            .txn(
                Txn::new()
                    .when([Compare::mod_revision("n", CompareOp::Equal, rev)])
                    .and_then(ops),
            )
            .await?;
        if !resp.succeeded {
            return Err("counter changed under the only writer".into());
        }
        writeln!(stdout, "{next}")?;
        stdout.flush()?;
    }
}
