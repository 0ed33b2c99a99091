//! moq-lite versions and their identifiers (spec §1.1).

/// ALPN / WebTransport protocol that means "negotiate with the compat SETUP" (lite-01/02).
pub const ALPN_LEGACY: &str = "moql";

/// A moq-lite protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// moq-lite-01 (compat SETUP, SUBSCRIBE_OK carries a priority).
    Lite01,
    /// moq-lite-02 (compat SETUP).
    Lite02,
    /// moq-lite-03 (ALPN `moq-lite-03`).
    Lite03,
    /// moq-lite-04 (ALPN `moq-lite-04`).
    Lite04,
    /// moq-lite-05 (ALPN `moq-lite-05`).
    Lite05,
    /// moq-lite-06 (ALPN `moq-lite-06`) as moq-relay 0.17.10 speaks it: typed announcements with
    /// implicit ids and a route cost, no Ordered byte, frame bounds (docs/moq-lite.md).
    Lite06,
}

impl Version {
    /// Every version, newest (most preferred) first.
    pub const ALL: [Version; 6] = [
        Version::Lite06,
        Version::Lite05,
        Version::Lite04,
        Version::Lite03,
        Version::Lite02,
        Version::Lite01,
    ];

    /// The SETUP version code (`0xff0dad00 + n`).
    pub const fn code(self) -> u64 {
        0xff0d_ad00
            + match self {
                Version::Lite01 => 1,
                Version::Lite02 => 2,
                Version::Lite03 => 3,
                Version::Lite04 => 4,
                Version::Lite05 => 5,
                Version::Lite06 => 6,
            }
    }

    /// The version for a SETUP version code, if it is one we speak.
    pub fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.code() == code)
    }

    /// The ALPN / WebTransport protocol string; `moql` for the compat-negotiated versions.
    pub const fn alpn(self) -> &'static str {
        match self {
            Version::Lite01 | Version::Lite02 => ALPN_LEGACY,
            Version::Lite03 => "moq-lite-03",
            Version::Lite04 => "moq-lite-04",
            Version::Lite05 => "moq-lite-05",
            Version::Lite06 => "moq-lite-06",
        }
    }

    /// The version fixed by an ALPN alone (`moq-lite-03`…`06`); `None` for `moql` and others.
    pub fn from_alpn(alpn: &str) -> Option<Self> {
        match alpn {
            "moq-lite-03" => Some(Version::Lite03),
            "moq-lite-04" => Some(Version::Lite04),
            "moq-lite-05" => Some(Version::Lite05),
            "moq-lite-06" => Some(Version::Lite06),
            _ => None,
        }
    }

    /// The human-readable name (`moq-lite-05`), as accepted by `--version` flags.
    pub const fn name(self) -> &'static str {
        match self {
            Version::Lite01 => "moq-lite-01",
            Version::Lite02 => "moq-lite-02",
            Version::Lite03 => "moq-lite-03",
            Version::Lite04 => "moq-lite-04",
            Version::Lite05 => "moq-lite-05",
            Version::Lite06 => "moq-lite-06",
        }
    }

    /// True for versions negotiated through the compat SETUP exchange (lite-01/02).
    pub const fn is_compat(self) -> bool {
        matches!(self, Version::Lite01 | Version::Lite02)
    }

    /// lite-06+: typed ANNOUNCE_START/END/UPDATE with implicit ids and route cost, no Exclude Hop,
    /// no Ordered byte, raw Group Start and frame bounds in SUBSCRIBE/FETCH/GROUP.
    pub const fn is_lite06(self) -> bool {
        matches!(self, Version::Lite06)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown version {s:?} (expected moq-lite-01 … moq-lite-06)"))
    }
}
