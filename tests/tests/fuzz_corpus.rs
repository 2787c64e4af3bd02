//! Every fuzz target's committed corpus and crash reproductions, replayed as
//! ordinary tests (the fuzzing itself is `benches/fuzz.sh`): what the fuzzer
//! once found stays found.

use std::path::PathBuf;
use switchyard_tests::fuzz::{seeds, TARGETS};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn seeds_run_through_their_targets() {
    let s = seeds();
    for (name, f) in TARGETS {
        let mine: Vec<_> = s.iter().filter(|(t, _)| *t == name).collect();
        assert!(!mine.is_empty(), "no seeds for {name}");
        for (_, data) in mine {
            f(data);
        }
    }
}

#[test]
fn committed_corpora_and_regressions_replay_without_a_panic() {
    for (name, f) in TARGETS {
        let corpus = switchyard_tests::fuzz::replay_dir(&fuzz_dir().join("corpus").join(name), f);
        assert!(corpus > 0, "fuzz/corpus/{name} is empty");
        switchyard_tests::fuzz::replay_dir(&fuzz_dir().join("regressions").join(name), f);
    }
}

/// Writes the seeds into `fuzz/corpus/<target>/` (run by `benches/fuzz.sh --seed`).
#[test]
#[ignore = "writes files: run by benches/fuzz.sh --seed"]
fn write_seed_corpora() {
    for (i, (name, data)) in seeds().into_iter().enumerate() {
        let dir = fuzz_dir().join("corpus").join(name);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{i:03}")), data).expect("seed");
    }
}

#[test]
fn the_frame_seeds_reach_the_paths_they_are_meant_for() {
    // A seed that only produced a parse error would teach the fuzzer little.
    use switchyard_southbound::DropReason as R;
    use switchyard_tests::fuzz::{everything_pmd, feed, sent, SLOTS};
    let mut pmd = everything_pmd();
    for (name, data) in seeds() {
        if name == "frames" {
            feed(&mut pmd, &data);
        }
    }
    let out: usize = SLOTS.iter().map(|&s| sent(&mut pmd, s).len()).sum();
    assert!(out >= 10, "only {out} frames left the datapath");
    let d = |r: R| pmd.stats.drops[r as usize].get();
    assert_eq!(d(R::TunnelIngressNotBound) + d(R::TunnelUnknownSource), 0);
    assert_eq!(d(R::PortSecurityIpv6), 2, "sent twice");
    assert!(pmd.stats.lb_new.get() >= 1, "no VIP connection");
    assert!(pmd.stats.generated.get() >= 1, "no generated answer");
}
