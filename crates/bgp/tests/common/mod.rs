//! Helpers shared by the speaker's namespace tests.
#![allow(dead_code)] // each test file uses its own subset

use std::net::IpAddr;

use clos_bgp::driver::{Speaker, SpeakerHandle, SpeakerSpec, SpeakerStatus};
use clos_testkit::Netns;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Two fresh namespaces joined by a veth, with `left_cidr` and `right_cidr` on its ends.
pub fn linked_pair(left_cidr: &str, right_cidr: &str) -> (Netns, Netns) {
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    let link = left.link_to(&right).unwrap();
    left.add_addr(&link.local, left_cidr).unwrap();
    right.add_addr(&link.remote, right_cidr).unwrap();
    (left, right)
}

/// Runs a speaker inside `ns` on a thread of its own (its sockets live in `ns`); the handle
/// works from any thread. The speaker lives until the test process exits.
pub fn run_speaker(ns: &Netns, spec: SpeakerSpec) -> SpeakerHandle {
    let (tx, rx) = std::sync::mpsc::channel();
    ns.spawn_thread(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let handle = Speaker::spawn(spec).await;
            let keep = handle.as_ref().ok().cloned();
            tx.send(handle).unwrap();
            if keep.is_some() {
                std::future::pending::<()>().await;
            }
        });
    })
    .unwrap();
    rx.recv().unwrap().unwrap()
}

/// Runs one future to completion on a fresh runtime (the speaker's handle is runtime-agnostic).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub fn status(clos: &SpeakerHandle) -> SpeakerStatus {
    block_on(clos.status()).unwrap()
}
