//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`: hand-written seeds plus any crash
//! input found, kept as a named regression file) through the same checks the cargo-fuzz targets
//! run, so `cargo test` catches a regression without a fuzzer.

use std::path::PathBuf;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("no corpus at {}: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A panic here names the file through the default hook's message plus this context.
        eprintln!("replaying {}", path.display());
        check(&data);
        count += 1;
    }
    assert!(count > 0, "empty corpus for {target}");
}

#[test]
fn fingerprint_body() {
    replay("fingerprint_body", moq_native::fuzz::fingerprint_body);
}

#[test]
fn every_target_has_a_corpus() {
    let targets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for entry in std::fs::read_dir(&targets).expect("fuzz targets") {
        let path = entry.expect("target").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("target name");
        let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(name);
        assert!(
            corpus.is_dir(),
            "fuzz target {name} has no corpus at {}",
            corpus.display()
        );
    }
}

#[test]
fn qmux_websocket() {
    replay("qmux_websocket", moq_native::fuzz::qmux_websocket);
}
