//! Who may do what: a JWT (`?jwt=`) or the anonymous public prefix, scoped by the URL path.
//!
//! A token's `root` and its `put`/`get` prefixes are absolute relay paths. The session's root is the
//! connection's URL path (or the lite-05 SETUP Path on raw QUIC); each permission is made relative
//! to it: a prefix under the root keeps its rest, a prefix above the root grants the whole session
//! scope, anything else is dropped. All comparisons are on whole segments (`demo` ≠ `demo2`), and a
//! path with a `.` or `..` segment (even percent-encoded) is refused outright.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moq_lite::Path;
use percent_encoding::percent_decode_str;

/// Why a connection was refused. Every variant is an HTTP 401 / an `unauthorized` close.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token and no public prefix covers the path.
    #[error("a token is required (no ?jwt= and no public access here)")]
    TokenRequired,
    /// A token was given but the relay has no key to check it.
    #[error("tokens are not accepted: the relay has no --auth-key")]
    NoKey,
    /// The token did not verify.
    #[error("invalid token: {0}")]
    Token(#[from] moq_token::Error),
    /// The URL path is malformed.
    #[error("invalid path: {0}")]
    Path(String),
    /// The token grants nothing at this path.
    #[error("the token grants nothing under /{0}")]
    NothingAllowed(Path),
}

/// What a session may do, relative to its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The session root (absolute relay path).
    pub root: Path,
    /// Prefixes (relative to the root) the client may announce under.
    pub publish: Vec<Path>,
    /// Prefixes (relative to the root) the client may discover and subscribe under.
    pub subscribe: Vec<Path>,
    /// When the token expires; the session is closed then. `None` for anonymous access and for
    /// tokens without `exp`, or with one beyond what the clock can represent.
    pub expires: Option<SystemTime>,
}

/// The relay's auth configuration.
pub struct Auth {
    key: Option<moq_token::Key>,
    public: Option<Path>,
}

impl Auth {
    /// `key` checks tokens; `public` is the prefix anyone may use without one (`""` = everything).
    pub fn new(key: Option<moq_token::Key>, public: Option<&str>) -> anyhow::Result<Self> {
        let public = public
            .map(|p| parse_path(p).map_err(anyhow::Error::msg))
            .transpose()?;
        if key.is_none() && public.is_none() {
            anyhow::bail!("no auth configured: give --auth-key, or --auth-public PREFIX (\"\" opens everything)");
        }
        Ok(Self { key, public })
    }

    /// Check a connection to URL path `path` with an optional token.
    pub fn verify(&self, path: &str, token: Option<&str>) -> Result<Scope, AuthError> {
        let root = parse_path(path).map_err(AuthError::Path)?;
        let (claims_root, publish, subscribe, expires) = match token.filter(|t| !t.is_empty()) {
            Some(token) => {
                let key = self.key.as_ref().ok_or(AuthError::NoKey)?;
                let claims = key.verify(token)?;
                let prefixes = |list: &[String]| {
                    list.iter()
                        .map(|p| parse_path(p).map_err(AuthError::Path))
                        .collect::<Result<Vec<_>, _>>()
                };
                // An `exp` past what SystemTime can hold (u64::MAX on every platform) is a time
                // that never comes: the session is not closed for it.
                let expires = claims
                    .expires
                    .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)));
                (
                    parse_path(&claims.root).map_err(AuthError::Path)?,
                    prefixes(&claims.publish)?,
                    prefixes(&claims.subscribe)?,
                    expires,
                )
            }
            None => match &self.public {
                Some(public) => (public.clone(), vec![Path::ROOT], vec![Path::ROOT], None),
                None => return Err(AuthError::TokenRequired),
            },
        };
        let relative = |list: Vec<Path>| -> Vec<Path> {
            let mut out = Vec::new();
            for prefix in list {
                let Ok(absolute) = claims_root.join(&prefix) else {
                    continue;
                };
                let scoped = if let Some(rest) = absolute.strip_prefix(&root) {
                    rest
                } else if root.has_prefix(&absolute) {
                    Path::ROOT
                } else {
                    continue;
                };
                if !out.contains(&scoped) {
                    out.push(scoped);
                }
            }
            out
        };
        let scope = Scope {
            publish: relative(publish),
            subscribe: relative(subscribe),
            root: root.clone(),
            expires,
        };
        if scope.publish.is_empty() && scope.subscribe.is_empty() {
            return Err(AuthError::NothingAllowed(root));
        }
        Ok(scope)
    }
}

/// Percent-decode and normalise a URL path; refuse `.`/`..` segments and non-UTF-8.
fn parse_path(raw: &str) -> Result<Path, String> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "not UTF-8".to_string())?;
    if decoded.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(format!("{raw:?} has a . or .. segment"));
    }
    Path::new(&decoded).map_err(|e| e.to_string())
}

/// Split a lite-05 SETUP Path (`/room?jwt=...`) or URL into its path and `jwt` query value.
pub fn split_path_and_token(path_and_query: &str) -> (String, Option<String>) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let token = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "jwt")
        .map(|(_, v)| v.into_owned());
    (path.to_string(), token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        Path::new(s).unwrap()
    }

    #[test]
    fn public_prefix_scopes_anonymous_users() {
        let auth = Auth::new(None, Some("anon")).unwrap();
        let scope = auth.verify("/anon", None).unwrap();
        assert_eq!(
            (scope.root.clone(), scope.publish.clone()),
            (p("anon"), vec![Path::ROOT])
        );
        let scope = auth.verify("/anon/room", None).unwrap();
        assert_eq!(scope.subscribe, vec![Path::ROOT]);
        // At the relay root, anonymous users see only anon/.
        assert_eq!(auth.verify("/", None).unwrap().subscribe, vec![p("anon")]);
        assert!(matches!(
            auth.verify("/anon2", None),
            Err(AuthError::NothingAllowed(_))
        ));
        assert!(matches!(
            auth.verify("/private", None),
            Err(AuthError::NothingAllowed(_))
        ));
        let open = Auth::new(None, Some("")).unwrap();
        assert_eq!(
            open.verify("/anything/at/all", None).unwrap().publish,
            vec![Path::ROOT]
        );
    }

    #[test]
    fn path_tricks_are_refused_or_normalised() {
        let auth = Auth::new(None, Some("anon")).unwrap();
        assert!(matches!(
            auth.verify("/anon/../private", None),
            Err(AuthError::Path(_))
        ));
        assert!(matches!(
            auth.verify("/anon/%2e%2e/private", None),
            Err(AuthError::Path(_))
        ));
        assert!(matches!(
            auth.verify("/anon/./x", None),
            Err(AuthError::Path(_))
        ));
        assert_eq!(auth.verify("//anon//x/", None).unwrap().root, p("anon/x"));
        // An encoded slash decodes to a segment boundary, still under anon.
        assert_eq!(auth.verify("/anon%2Fx", None).unwrap().root, p("anon/x"));
        assert!(
            matches!(
                auth.verify("/anon%32", None),
                Err(AuthError::NothingAllowed(_))
            ),
            "anon2 is not anon"
        );
    }

    /// `exp` anywhere in u64 gives a verdict: 0 has expired; a time the clock can hold is kept;
    /// beyond that (u64::MAX) the session never expires. (UNIX_EPOCH + u64::MAX seconds used to
    /// panic here.)
    #[test]
    fn extreme_expiry_times_never_panic() {
        let key = moq_token::Key::generate(moq_token::Algorithm::HS256, None).unwrap();
        let token = |exp: u64| {
            key.sign(&moq_token::Claims {
                subscribe: vec!["".into()],
                expires: Some(exp),
                ..Default::default()
            })
            .unwrap()
        };
        let auth = Auth::new(Some(key.clone()), None).unwrap();
        assert!(matches!(
            auth.verify("/room", Some(&token(0))),
            Err(AuthError::Token(moq_token::Error::Expired { .. }))
        ));
        let far = auth
            .verify("/room", Some(&token(i64::MAX as u64 / 2)))
            .unwrap();
        assert!(far.expires.is_some_and(|at| at > SystemTime::now()));
        for exp in [1 << 63, u64::MAX - 1, u64::MAX] {
            let scope = auth.verify("/room", Some(&token(exp))).unwrap();
            assert!(
                scope.expires.is_none_or(|at| at > SystemTime::now()),
                "exp {exp}"
            );
        }
        assert_eq!(
            auth.verify("/room", Some(&token(u64::MAX)))
                .unwrap()
                .expires,
            None
        );
    }

    #[test]
    fn no_auth_is_a_config_error() {
        assert!(Auth::new(None, None).is_err());
    }

    #[test]
    fn splits_setup_paths() {
        assert_eq!(
            split_path_and_token("/anon?jwt=abc"),
            ("/anon".into(), Some("abc".into()))
        );
        assert_eq!(split_path_and_token("/anon"), ("/anon".into(), None));
        assert_eq!(
            split_path_and_token("/a?x=1&jwt=a%2Bb"),
            ("/a".into(), Some("a+b".into()))
        );
    }
}
