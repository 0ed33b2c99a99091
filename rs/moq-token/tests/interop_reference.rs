//! Interop: keys and tokens cross between this crate (library and `moq-token` binary) and the
//! reference `moq-token` CLI from crates.io (`moq-token-cli` 0.5.48, library `moq-token` 0.7.4),
//! for HS256, ES256, RS256 and EdDSA, in both directions, private and public keys alike.
//!
//! The reference binary is installed outside the repository by `scripts/install-peers.sh` into
//! `$MOQ_PEERS_DIR` (default `$HOME/.cache/moq-interop`) as `token-cli-0.5.48/bin/moq-token`; a
//! missing binary fails the test (run the script).
//!
//! Reference 0.5.48 differs from the original command line: `--key` belongs to `sign`/`verify`,
//! `generate` writes with `--out` (stdout by default) and assigns a random kid, `sign` has no
//! `--cluster` (its claims dropped the field and ignore it), and `verify` prints the claims as
//! Rust `Debug` text rather than JSON. Ours accepts the reference's spellings too.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{SystemTime, UNIX_EPOCH},
};

use base64::Engine;
use moq_token::{Algorithm, Claims, Key};

/// Our binary under test.
const OURS: &str = env!("CARGO_BIN_EXE_moq-token");
/// The reference release the tests run against.
const REFERENCE_VERSION: &str = "0.5.48";
/// The algorithms crossed: one per key type.
const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::HS256,
    Algorithm::ES256,
    Algorithm::RS256,
    Algorithm::EdDSA,
];

fn reference() -> PathBuf {
    test_support::peers::binary(&format!("token-cli-{REFERENCE_VERSION}"), "moq-token")
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("moq-token-interop-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(bin: impl AsRef<Path>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin.as_ref())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", bin.as_ref().display()));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// Run and require success; returns stdout.
fn run_ok(bin: impl AsRef<Path>, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(bin.as_ref(), args, stdin);
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{}",
        bin.as_ref().display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims every test signs: several prefixes each, both times set.
fn claims() -> Claims {
    let now = now();
    Claims {
        root: "demo".into(),
        publish: vec!["alice".into(), "bob/cam".into()],
        subscribe: vec!["".into(), "carol".into()],
        cluster: false,
        expires: Some(now + 3600),
        issued: Some(now),
    }
}

/// `sign` arguments (same flags in both CLIs) for `claims`.
fn sign_args<'a>(key: &'a str, claims: &'a Claims, times: &'a [String; 2]) -> Vec<&'a str> {
    let mut args = vec!["sign", "--key", key, "--root", &claims.root];
    for path in &claims.publish {
        args.extend(["--publish", path]);
    }
    for path in &claims.subscribe {
        args.extend(["--subscribe", path]);
    }
    args.extend(["--expires", &times[0], "--issued", &times[1]]);
    args
}

fn times(claims: &Claims) -> [String; 2] {
    [
        claims.expires.unwrap().to_string(),
        claims.issued.unwrap().to_string(),
    ]
}

/// The reference's `verify` prints `{claims:#?}`; check every value appears in it.
fn assert_reference_printed(output: &str, claims: &Claims) {
    let mut expected = vec![format!("root: {:?},", claims.root)];
    for path in claims.publish.iter().chain(&claims.subscribe) {
        expected.push(format!("{path:?},"));
    }
    for time in [claims.expires, claims.issued].into_iter().flatten() {
        expected.push(format!("tv_sec: {time},"));
    }
    for needle in expected {
        assert!(output.contains(&needle), "{needle} missing from:\n{output}");
    }
}

/// The `kid` in a JWT's header.
fn header_kid(token: &str) -> Option<String> {
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().map(str::to_string)
}

#[test]
fn reference_keys_and_tokens_work_with_ours() {
    let reference = reference();
    let dir = Scratch::new("from-reference");

    for alg in ALGORITHMS {
        let private = dir.path(&format!("ref-{alg}.jwk"));
        let public = dir.path(&format!("ref-{alg}.pub.jwk"));
        let kid = format!("ref-{alg}");
        let mut args = vec![
            "generate",
            "--algorithm",
            alg.as_str(),
            "--id",
            &kid,
            "--out",
            &private,
        ];
        if !alg.is_hmac() {
            args.extend(["--public", &public]);
        }
        run_ok(&reference, &args, None);

        // Our library loads the reference's key file as it is.
        let key = Key::from_file(&private).unwrap_or_else(|err| panic!("{alg}: {err}"));
        assert_eq!(key.algorithm(), alg);
        assert_eq!(key.kid(), Some(kid.as_str()));
        assert!(key.has_private());

        // A token the reference signs verifies with our library, same claims.
        let claims = claims();
        let times = times(&claims);
        let token = run_ok(&reference, &sign_args(&private, &claims, &times), None);
        let token = token.trim();
        assert_eq!(key.verify(token).unwrap(), claims, "{alg}");
        assert_eq!(header_kid(token).as_deref(), Some(kid.as_str()));

        // ... and with our binary, which prints the claims as JSON.
        let verifier = if alg.is_hmac() { &private } else { &public };
        let json = run_ok(OURS, &["--key", verifier, "verify"], Some(token));
        let printed: Claims = serde_json::from_str(&json).unwrap();
        assert_eq!(printed, claims, "{alg}");

        // Our library signs with the reference's key; the reference verifies it.
        let ours_signed = key.sign(&claims).unwrap();
        let out = run_ok(
            &reference,
            &["verify", "--key", verifier],
            Some(&ours_signed),
        );
        assert_reference_printed(&out, &claims);

        if !alg.is_hmac() {
            // The reference's public key is the one we derive, field for field, and verifies.
            let public = Key::from_file(&public).unwrap();
            assert_eq!(public, key.to_public().unwrap(), "{alg}");
            assert_eq!(public.verify(token).unwrap(), claims);
            assert!(public.sign(&claims).is_err(), "{alg} public key signed");
        }
    }
}

#[test]
fn our_keys_and_tokens_work_with_the_reference() {
    let reference = reference();
    let dir = Scratch::new("from-ours");

    for alg in ALGORITHMS {
        let private = dir.path(&format!("our-{alg}.jwk"));
        let public = dir.path(&format!("our-{alg}.pub.jwk"));
        let kid = format!("our-{alg}");
        let mut args = vec![
            "--key",
            &private,
            "generate",
            "--algorithm",
            alg.as_str(),
            "--id",
            &kid,
        ];
        if !alg.is_hmac() {
            args.extend(["--public", &public]);
        }
        run_ok(OURS, &args, None);
        let verifier = if alg.is_hmac() { &private } else { &public };

        // A token our binary signs verifies with the reference, with the private and public key.
        let claims = claims();
        let times = times(&claims);
        let token = run_ok(OURS, &sign_args(&private, &claims, &times), None);
        let token = token.trim();
        assert_eq!(header_kid(token).as_deref(), Some(kid.as_str()));
        for key in [&private, verifier] {
            let out = run_ok(&reference, &["verify", "--key", key], Some(token));
            assert_reference_printed(&out, &claims);
        }

        // The reference signs with our private key file; we verify.
        let token = run_ok(&reference, &sign_args(&private, &claims, &times), None);
        let json = run_ok(OURS, &["--key", verifier, "verify"], Some(token.trim()));
        assert_eq!(
            serde_json::from_str::<Claims>(&json).unwrap(),
            claims,
            "{alg}"
        );

        // Not vacuous: the reference refuses our token under another key of the same algorithm.
        let other = dir.path(&format!("other-{alg}.jwk"));
        run_ok(
            &reference,
            &["generate", "--algorithm", alg.as_str(), "--out", &other],
            None,
        );
        let out = run(&reference, &["verify", "--key", &other], Some(token.trim()));
        assert!(
            !out.status.success(),
            "{alg}: the reference accepted a foreign token"
        );
    }
}

#[test]
fn cluster_claim_is_ignored_by_the_reference() {
    let reference = reference();
    let dir = Scratch::new("cluster");
    let key = dir.path("key.jwk");
    run_ok(OURS, &["--key", &key, "generate"], None);
    let token = run_ok(
        OURS,
        &["--key", &key, "sign", "--subscribe", "", "--cluster"],
        None,
    );

    let json = run_ok(OURS, &["--key", &key, "verify"], Some(token.trim()));
    assert!(serde_json::from_str::<Claims>(&json).unwrap().cluster);
    run_ok(&reference, &["verify", "--key", &key], Some(token.trim()));
}

#[test]
fn expired_tokens_are_refused_both_ways() {
    let reference = reference();
    let dir = Scratch::new("expired");
    let key = dir.path("key.jwk");
    run_ok(
        &reference,
        &["generate", "--algorithm", "ES256", "--out", &key],
        None,
    );
    let past = (now() - 60).to_string();
    let args = ["sign", "--key", &key, "--subscribe", "", "--expires", &past];

    let theirs = run_ok(&reference, &args, None);
    let out = run(OURS, &["--key", &key, "verify"], Some(theirs.trim()));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));

    let ours = run_ok(OURS, &args, None);
    assert!(
        !run(&reference, &["verify", "--key", &key], Some(ours.trim()))
            .status
            .success()
    );
}

#[test]
fn the_reference_command_lines_work_with_ours() {
    // generate --out / --public, sign --key, verify --key --in: the reference 0.5's spelling.
    let dir = Scratch::new("command-lines");
    let (key, public, token_file) = (dir.path("k.jwk"), dir.path("p.jwk"), dir.path("t.jwt"));
    for bin in [reference(), PathBuf::from(OURS)] {
        run_ok(
            &bin,
            &[
                "generate",
                "--algorithm",
                "EdDSA",
                "--out",
                &key,
                "--public",
                &public,
            ],
            None,
        );
        let token = run_ok(
            &bin,
            &["sign", "--key", &key, "--root", "demo", "--publish", "me"],
            None,
        );
        std::fs::write(&token_file, token).unwrap();
        run_ok(
            &bin,
            &["verify", "--key", &public, "--in", &token_file],
            None,
        );

        // Without a destination, generate prints the key on stdout.
        let printed = run_ok(&bin, &["generate"], None);
        let printed = Key::decode_str(&printed).unwrap();
        assert_eq!(printed.algorithm(), Algorithm::HS256);
        assert!(printed.kid().is_some(), "{}: no random kid", bin.display());
    }
}
