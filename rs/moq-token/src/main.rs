//! `moq-token`: generate keys, and sign and verify tokens, for moq-relay.
//!
//! Accepts both spellings scripts use: the original `moq-token --key K <command>`, and the
//! reference 0.5's `generate --out K`, `sign --key K`, `verify --key K [--in FILE]` (`--key`
//! is accepted before or after the subcommand).

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use moq_token::{Algorithm, Claims, Key};

/// Generate keys, and sign and verify tokens, for moq-relay.
#[derive(Parser, Debug)]
#[command(name = "moq-token", version, long_about = LONG_ABOUT, after_help = EXAMPLES)]
struct Cli {
    /// The key file: written by `generate`, read by `sign` and `verify`. `-` means stdout
    /// (generate) or stdin (sign, verify).
    #[arg(long, global = true, value_name = "PATH")]
    key: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

const LONG_ABOUT: &str = "Generate keys, and sign and verify tokens, for moq-relay.

A key file holds a JWK (JSON Web Key) encoded as base64url, as the reference moq-token writes it. \
HMAC keys (HS*) are a shared secret the relay must hold too; for the other algorithms give the \
relay only the public key (`generate --public`).

A token is a JWT whose claims say where the holder may connect (`root`, a URL path prefix) and \
which paths under it it may publish (`put`) and subscribe to (`get`); `\"\"` means everything \
under the root.";

const EXAMPLES: &str = "Examples:
  moq-token --key root.jwk generate --algorithm EdDSA --public root.pub.jwk
  moq-token --key root.jwk sign --root demo --subscribe '' --publish me --expires +1d > demo.jwt
  moq-token --key root.pub.jwk verify < demo.jwt";

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a new key and write it to --key.
    ///
    /// A random key ID (16 hex digits) is assigned unless --id is given; it is copied into the
    /// header of every token the key signs. The key file is written readable by its owner only.
    /// Without --key or --out the key is printed on stdout.
    Generate {
        /// The signing algorithm: HS256, HS384, HS512 (shared secret), ES256, ES384, RS256,
        /// RS384, RS512, PS256, PS384, PS512 or EdDSA.
        #[arg(long, default_value = "HS256", value_name = "ALG")]
        algorithm: Algorithm,

        /// The key ID (kid): 1 to 128 of A-Z a-z 0-9 - _.
        #[arg(long, value_name = "KID")]
        id: Option<String>,

        /// Also write the public (verify-only) key here, for the relay. Not for HS* keys. `-` is
        /// stdout.
        #[arg(long, value_name = "PATH")]
        public: Option<PathBuf>,

        /// Where to write the key; the reference 0.5's name for --key.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },

    /// Sign a token with --key and print it on stdout.
    ///
    /// At least one --publish or --subscribe is required: a token granting nothing is refused.
    Sign {
        /// The URL path prefix the client must connect under. Default: anywhere.
        #[arg(long, default_value = "", value_name = "PATH")]
        root: String,

        /// A path prefix (relative to --root) the client may publish under; `""` is everything.
        /// Repeat for more.
        #[arg(long, value_name = "PREFIX")]
        publish: Vec<String>,

        /// A path prefix (relative to --root) the client may subscribe to; `""` is everything.
        /// Repeat for more.
        #[arg(long, value_name = "PREFIX")]
        subscribe: Vec<String>,

        /// Mark the holder as a cluster peer (relay-to-relay session).
        #[arg(long)]
        cluster: bool,

        /// Expiry (`exp`): unix seconds, or relative to now as +N followed by s, m, h or d
        /// (e.g. +1h). Default: never.
        #[arg(long, value_name = "UNIX|+DURATION", value_parser = parse_time)]
        expires: Option<u64>,

        /// Issue time (`iat`): unix seconds, `now`, or +DURATION. Informational only.
        #[arg(long, value_name = "UNIX|now", value_parser = parse_time)]
        issued: Option<u64>,
    },

    /// Verify a token (read from stdin) with --key and print its claims as JSON.
    ///
    /// Checks the algorithm, the signature, the expiry and that the token grants something;
    /// exits non-zero with the reason otherwise. Whether the claims fit a given connection path
    /// is up to the relay.
    Verify {
        /// Read the token from this file instead of stdin (`-`).
        #[arg(long = "in", value_name = "PATH", default_value = "-")]
        input: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line with the whole cause chain, e.g. "token rejected: bad signature: ...".
            eprintln!("moq-token: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate {
            algorithm,
            id,
            public,
            out,
        } => generate(algorithm, id, cli.key, out, public),
        Command::Sign {
            root,
            publish,
            subscribe,
            cluster,
            expires,
            issued,
        } => {
            let key = read_key(cli.key.as_deref())?;
            let claims = Claims {
                root,
                publish,
                subscribe,
                cluster,
                expires,
                issued,
            };
            let token = key.sign(&claims).context("cannot sign")?;
            println!("{token}");
            Ok(())
        }
        Command::Verify { input } => {
            if cli.key.as_deref() == Some(Path::new("-")) && is_stdio(Some(&input)) {
                bail!("--key and --in cannot both read stdin");
            }
            let key = read_key(cli.key.as_deref())?;
            let token = if is_stdio(Some(&input)) {
                let mut token = String::new();
                std::io::stdin()
                    .read_to_string(&mut token)
                    .context("cannot read the token from stdin")?;
                token
            } else {
                std::fs::read_to_string(&input)
                    .with_context(|| format!("cannot read the token from {}", input.display()))?
            };
            let claims = key.verify(token.trim()).context("token rejected")?;
            println!("{}", serde_json::to_string_pretty(&claims)?);
            Ok(())
        }
    }
}

fn generate(
    algorithm: Algorithm,
    id: Option<String>,
    key_path: Option<PathBuf>,
    out: Option<PathBuf>,
    public_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let path = match (key_path, out) {
        (Some(key), Some(out)) if key != out => bail!("--key and --out name different files"),
        (key, out) => key.or(out),
    };
    if is_stdio(path.as_deref()) && public_path.is_some() && is_stdio(public_path.as_deref()) {
        bail!("cannot write both keys to stdout; give --key or --public a file path");
    }

    let kid = match id {
        Some(id) => id,
        None => random_kid()?,
    };
    let key = Key::generate(algorithm, Some(kid)).context("cannot generate the key")?;
    // Derive the public key before writing anything, so an HMAC + --public mistake writes nothing.
    let public = public_path
        .map(|path| Ok::<_, anyhow::Error>((key.to_public()?, path)))
        .transpose()?;

    write_key(&key, path.as_deref())?;
    if let Some((public, path)) = public {
        write_key(&public, Some(&path))?;
    }
    Ok(())
}

/// 16 hex digits from 8 random bytes, like the reference's default key IDs.
fn random_kid() -> anyhow::Result<String> {
    use rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 8];
    OsRng.try_fill_bytes(&mut bytes).context("random source")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `None` and `-` both mean the standard stream.
fn is_stdio(path: Option<&Path>) -> bool {
    path.is_none_or(|path| path == Path::new("-"))
}

fn read_key(path: Option<&Path>) -> anyhow::Result<Key> {
    let Some(path) = path else {
        bail!("--key <PATH> is required: the key file to use (`-` reads it from stdin)");
    };
    if is_stdio(Some(path)) {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the key from stdin")?;
        return Key::decode_str(&text).context("cannot load the key from stdin");
    }
    Key::from_file(path).map_err(|err| match err {
        // Already names the file.
        moq_token::Error::Io { .. } => anyhow::Error::new(err).context("cannot load the key"),
        err => anyhow::Error::new(err).context(format!("cannot load the key {}", path.display())),
    })
}

fn write_key(key: &Key, path: Option<&Path>) -> anyhow::Result<()> {
    match path {
        // The error names the file.
        Some(path) if !is_stdio(Some(path)) => key.to_file(path).context("cannot write the key"),
        _ => {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", key.encode_string()?)?;
            Ok(stdout.flush()?)
        }
    }
}

/// Unix seconds, `now`, or `+N` with a unit suffix (`s`, `m`, `h`, `d`) counted from now.
fn parse_time(value: &str) -> Result<u64, String> {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .map_err(|_| "the system clock is before 1970".to_string())
    };
    if value == "now" {
        return now();
    }
    let Some(relative) = value.strip_prefix('+') else {
        return value
            .parse()
            .map_err(|_| format!("{value:?} is not unix seconds, `now` or +N[s|m|h|d]"));
    };
    let split = relative
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(relative.len());
    let (count, unit) = relative.split_at(split);
    let count: u64 = count
        .parse()
        .map_err(|_| format!("{value:?}: expected +N[s|m|h|d], e.g. +1h"))?;
    let unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{value:?}: unknown unit {unit:?} (use s, m, h or d)"
            ))
        }
    };
    count
        .checked_mul(unit)
        .and_then(|offset| offset.checked_add(now().ok()?))
        .ok_or_else(|| format!("{value:?} is too far in the future"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn times_parse_as_unix_now_or_relative() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        let now = parse_time("now").unwrap();
        let hour = parse_time("+1h").unwrap();
        assert!((now + 3600..now + 3602).contains(&hour), "{now} {hour}");
        let day = parse_time("+2d").unwrap();
        assert!((now + 172_800..now + 172_802).contains(&day));
        assert!((now + 90..now + 92).contains(&parse_time("+90").unwrap()));
        for bad in [
            "",
            "-1",
            "+",
            "+1y",
            "+h",
            "soon",
            "1.5",
            "+99999999999999999999d",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
