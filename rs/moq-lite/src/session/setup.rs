//! Version negotiation and the SETUP exchange (spec §1.6, §1.7, §4).

use bytes::{Buf, Bytes};
use moq_io::Session as Transport;

use super::stream::{session_error, Reader, Writer};
use crate::coding::{
    get_varint, BiStreamType, ClientSetupCompat, CompatParam, Decode, DecodeError, ProbeLevel,
    Role, ServerSetupCompat, Setup, UniStreamType, Version, ALPN_LEGACY,
};
use crate::Error;

/// Compat SETUP parameter: the request path on URI-less transports.
const COMPAT_PARAM_PATH: u64 = 1;
/// Compat SETUP parameter: MaxRequestId (what the reference sends).
const COMPAT_PARAM_MAX_REQUEST_ID: u64 = 2;
/// Compat SETUP parameter: implementation name.
const COMPAT_PARAM_IMPLEMENTATION: u64 = 7;
/// Our implementation name in the compat SETUP.
const IMPLEMENTATION: &str = "moq-rs";

/// A stream type varint, read with the shared [`Reader`] machinery.
pub(crate) struct StreamId(pub u64);

impl Decode for StreamId {
    fn decode<B: Buf>(buf: &mut B, _: Version) -> Result<Self, DecodeError> {
        get_varint(buf).map(StreamId)
    }
}

/// What the handshake settled.
pub(crate) struct Negotiated {
    pub version: Version,
    /// The peer's SETUP (lite-05), if already received.
    pub peer_setup: Option<Setup>,
    /// The compat session stream (lite-01/02); closing it ends the session.
    pub compat: Option<(Writer, Reader)>,
}

/// The version fixed by the transport's negotiated protocol, or `None` for the compat exchange.
fn negotiated_version(transport: &Transport) -> Result<Option<Version>, Error> {
    match transport.protocol().as_deref() {
        None => Ok(None),
        Some(ALPN_LEGACY) => Ok(None),
        Some(protocol) => match Version::from_alpn(protocol) {
            Some(version) => Ok(Some(version)),
            None => Err(Error::Unsupported("negotiated protocol is not moq-lite")),
        },
    }
}

/// The client's side: SETUP on lite-05, the compat exchange when no version was negotiated.
pub(crate) async fn client(transport: &Transport, setup: Setup) -> Result<Negotiated, Error> {
    let Some(version) = negotiated_version(transport)? else {
        return client_compat(transport, setup.path).await;
    };
    if version >= Version::Lite05 {
        // spec §1.7: the client's SETUP goes on its first uni stream, before anything else.
        let stream = transport.open_uni().await.map_err(session_error)?;
        let mut writer = Writer::new(stream, version);
        writer.encode(&UniStreamType::Setup).await?;
        writer.encode(&setup).await?;
        writer.finish();
    }
    Ok(Negotiated {
        version,
        peer_setup: None,
        compat: None,
    })
}

async fn client_compat(transport: &Transport, path: Option<String>) -> Result<Negotiated, Error> {
    let (send, recv) = transport.open_bi().await.map_err(session_error)?;
    // The compat messages carry their own type bytes and u16 lengths; the version is irrelevant.
    let mut writer = Writer::new(send, Version::Lite02);
    let mut reader = Reader::new(recv, Version::Lite02);
    let mut params = vec![
        (
            COMPAT_PARAM_MAX_REQUEST_ID,
            CompatParam::Varint(u32::MAX as u64),
        ),
        (
            COMPAT_PARAM_IMPLEMENTATION,
            CompatParam::Bytes(Bytes::from_static(IMPLEMENTATION.as_bytes())),
        ),
    ];
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        params.push((COMPAT_PARAM_PATH, CompatParam::Bytes(Bytes::from(path))));
    }
    let client = ClientSetupCompat {
        versions: vec![Version::Lite02.code(), Version::Lite01.code()],
        params,
    };
    writer.encode(&client).await?;
    let server: ServerSetupCompat = reader.decode().await?;
    let version = match Version::from_code(server.version) {
        Some(v) if v.is_compat() => v,
        _ => return Err(Error::Version),
    };
    Ok(Negotiated {
        version,
        peer_setup: None,
        compat: Some((writer, reader)),
    })
}

/// The server's side: read the client's SETUP (lite-05) or answer the compat exchange.
/// Returns the negotiation and the path the client sent in SETUP, if any.
pub(crate) async fn server(transport: &Transport) -> Result<Negotiated, Error> {
    let Some(version) = negotiated_version(transport)? else {
        return server_compat(transport).await;
    };
    if version < Version::Lite05 {
        return Ok(Negotiated {
            version,
            peer_setup: None,
            compat: None,
        });
    }
    // spec §1.7: uni streams that arrive before the client's SETUP are refused (code 10).
    loop {
        let recv = transport.accept_uni().await.map_err(session_error)?;
        let mut reader = Reader::new(recv, version);
        let StreamId(kind) = reader.decode().await?;
        if UniStreamType::from_id(kind) != Some(UniStreamType::Setup) {
            reader.stop(&Error::UnexpectedStream(kind));
            continue;
        }
        let setup: Setup = reader.decode().await?;
        return Ok(Negotiated {
            version,
            peer_setup: Some(setup),
            compat: None,
        });
    }
}

async fn server_compat(transport: &Transport) -> Result<Negotiated, Error> {
    let (send, recv) = transport.accept_bi().await.map_err(session_error)?;
    let mut writer = Writer::new(send, Version::Lite02);
    let mut reader = Reader::new(recv, Version::Lite02);
    let StreamId(kind) = reader.decode().await?;
    if BiStreamType::from_id(kind) != Some(BiStreamType::ClientCompat) {
        return Err(Error::UnexpectedStream(kind));
    }
    let client: ClientSetupCompat = reader.decode().await?;
    // spec §1.3 (appendix A): the first version in the client's list that we support.
    let version = client
        .versions
        .iter()
        .filter_map(|code| Version::from_code(*code))
        .find(|v| v.is_compat())
        .ok_or(Error::Version)?;
    writer
        .encode(&ServerSetupCompat {
            version: version.code(),
            params: Vec::new(),
        })
        .await?;
    let path = client
        .params
        .iter()
        .find_map(|(key, value)| match (key, value) {
            (&COMPAT_PARAM_PATH, CompatParam::Bytes(b)) => String::from_utf8(b.to_vec()).ok(),
            _ => None,
        });
    let peer_setup = Setup {
        path,
        ..Default::default()
    };
    Ok(Negotiated {
        version,
        peer_setup: Some(peer_setup),
        compat: Some((writer, reader)),
    })
}

/// The SETUP we send (lite-05+); `cost` is the link price we declare (lite-06 route cost).
pub(crate) fn our_setup(
    path: Option<String>,
    role: Option<Role>,
    origin_id: u64,
    cost: Option<u64>,
) -> Setup {
    Setup {
        probe: Some(ProbeLevel::Report),
        path: path.filter(|p| !p.is_empty()),
        role,
        cost,
        origin: (origin_id != 0).then_some(origin_id),
    }
}

/// How long a part of the session waits for the peer's SETUP before going on without it.
const PEER_SETUP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The peer's SETUP (lite-05+), shared by the parts of a session: known at once on the server
/// (it reads the client's before starting), set by the driver on the client when the server's
/// Setup stream has been read. lite-06 needs its Origin (split horizon) and Cost (link price).
#[derive(Debug, Clone)]
pub(crate) struct PeerSetup(std::sync::Arc<tokio::sync::watch::Sender<Option<Setup>>>);

impl PeerSetup {
    pub fn new(initial: Option<Setup>) -> Self {
        Self(std::sync::Arc::new(tokio::sync::watch::channel(initial).0))
    }

    /// Record the peer's SETUP.
    pub fn set(&self, setup: Setup) {
        self.0.send_replace(Some(setup));
    }

    /// The peer's SETUP if it has arrived.
    pub fn now(&self) -> Option<Setup> {
        self.0.borrow().clone()
    }

    /// The peer's SETUP, waiting for it at most [`PEER_SETUP_WAIT`]; `None` if it did not come.
    pub async fn get(&self) -> Option<Setup> {
        let mut rx = self.0.subscribe();
        let setup = match tokio::time::timeout(PEER_SETUP_WAIT, rx.wait_for(Option::is_some)).await
        {
            Ok(Ok(setup)) => setup.clone(),
            _ => None,
        };
        setup
    }
}
