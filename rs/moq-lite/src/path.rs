//! Broadcast paths: `/`-separated segments, normalised when built.

use std::fmt;

/// Most segments a [`Path`] may have (spec §2: ≤32 path segments).
pub const MAX_PATH_SEGMENTS: usize = 32;

/// Most bytes a [`Path`] may have.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a string is not a valid [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// More than [`MAX_PATH_SEGMENTS`] segments.
    #[error("path has {0} segments, more than {MAX_PATH_SEGMENTS}")]
    TooManySegments(usize),
    /// More than [`MAX_PATH_LEN`] bytes.
    #[error("path is {0} bytes, more than {MAX_PATH_LEN}")]
    TooLong(usize),
}

/// A normalised broadcast path, relative to a session's scope root.
///
/// Leading and trailing `/` are trimmed and repeated `/` collapsed, so `"/a//b/"` is `"a/b"`.
/// Prefix matching works on whole segments: `demo` is a prefix of `demo/x` but not of `demo2`.
/// The empty path is the root and a prefix of everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(String);

impl Path {
    /// The empty (root) path.
    pub const ROOT: Path = Path(String::new());

    /// Normalise `s` into a path, rejecting too many segments or bytes.
    pub fn new(s: &str) -> Result<Self, PathError> {
        if s.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong(s.len()));
        }
        let mut out = String::with_capacity(s.len());
        let mut count = 0;
        for segment in s.split('/').filter(|seg| !seg.is_empty()) {
            count += 1;
            if count > MAX_PATH_SEGMENTS {
                return Err(PathError::TooManySegments(
                    s.split('/').filter(|x| !x.is_empty()).count(),
                ));
            }
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(segment);
        }
        Ok(Self(out))
    }

    /// The normalised string form (no leading or trailing `/`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the root path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The path's segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments().count()
    }

    /// True when `prefix` matches this path at a segment boundary.
    pub fn has_prefix(&self, prefix: &Path) -> bool {
        if prefix.is_empty() {
            return true;
        }
        match self.0.strip_prefix(prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// The rest of this path after `prefix`, if `prefix` matches at a segment boundary.
    pub fn strip_prefix(&self, prefix: &Path) -> Option<Path> {
        if prefix.is_empty() {
            return Some(self.clone());
        }
        let rest = self.0.strip_prefix(prefix.as_str())?;
        if rest.is_empty() {
            return Some(Path::ROOT);
        }
        rest.strip_prefix('/').map(|r| Path(r.to_string()))
    }

    /// This path followed by `suffix` (one `/` between, empty sides skipped).
    pub fn join(&self, suffix: &Path) -> Result<Path, PathError> {
        if suffix.is_empty() {
            return Ok(self.clone());
        }
        if self.is_empty() {
            return Ok(suffix.clone());
        }
        Path::new(&format!("{}/{}", self.0, suffix.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for Path {
    type Error = PathError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Path::new(s)
    }
}

impl TryFrom<String> for Path {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Path::new(&s)
    }
}

impl AsRef<str> for Path {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        Path::new(s).unwrap()
    }

    #[test]
    fn normalises_slashes() {
        assert_eq!(p("/a//b/").as_str(), "a/b");
        assert_eq!(p("").as_str(), "");
        assert_eq!(p("///").as_str(), "");
    }

    #[test]
    fn prefix_is_segment_aware() {
        assert!(p("demo/x").has_prefix(&p("demo")));
        assert!(p("demo").has_prefix(&p("demo")));
        assert!(!p("demo2").has_prefix(&p("demo")));
        assert!(p("anything").has_prefix(&Path::ROOT));
        assert_eq!(p("demo/x/y").strip_prefix(&p("demo")), Some(p("x/y")));
        assert_eq!(p("demo2").strip_prefix(&p("demo")), None);
        assert_eq!(p("demo").strip_prefix(&p("demo")), Some(Path::ROOT));
    }

    #[test]
    fn join_skips_empty_sides() {
        assert_eq!(p("a").join(&p("b/c")).unwrap(), p("a/b/c"));
        assert_eq!(Path::ROOT.join(&p("b")).unwrap(), p("b"));
        assert_eq!(p("a").join(&Path::ROOT).unwrap(), p("a"));
    }

    #[test]
    fn caps_segments() {
        let ok = vec!["x"; MAX_PATH_SEGMENTS].join("/");
        assert!(Path::new(&ok).is_ok());
        let bad = vec!["x"; MAX_PATH_SEGMENTS + 1].join("/");
        assert_eq!(Path::new(&bad), Err(PathError::TooManySegments(33)));
        assert!(p(&ok).join(&p("y")).is_err());
    }
}
