//! [`Connection`] for quinn: raw QUIC and WebTransport, both as `web_transport_quinn::Session`.

use std::any::Any;

use bytes::Bytes;
use web_transport_quinn::{
    ReadError, RecvStream as QuinnRecv, SendStream as QuinnSend, Session, SessionError,
    WebTransportError, WriteError,
};

use crate::{BiStream, BoxFuture, Connection, Error, Kind, RecvStream, SendStream, Stats};

fn session_error(err: SessionError) -> Error {
    match err {
        SessionError::WebTransportError(WebTransportError::Closed(code, reason)) => {
            Error::Closed { code, reason }
        }
        SessionError::ConnectionError(quinn::ConnectionError::ApplicationClosed(close)) => {
            Error::Closed {
                code: u32::try_from(close.error_code.into_inner()).unwrap_or(u32::MAX),
                reason: String::from_utf8_lossy(&close.reason).into_owned(),
            }
        }
        err => Error::Other(err.to_string()),
    }
}

fn write_error(err: WriteError) -> Error {
    match err {
        WriteError::Stopped(code) => Error::Stream(code),
        WriteError::SessionError(err) => session_error(err),
        err => Error::Other(err.to_string()),
    }
}

fn read_error(err: ReadError) -> Error {
    match err {
        ReadError::Reset(code) => Error::Stream(code),
        ReadError::SessionError(err) => session_error(err),
        err => Error::Other(err.to_string()),
    }
}

fn boxed(send: QuinnSend, recv: QuinnRecv) -> BiStream {
    (Box::new(send), Box::new(recv))
}

impl Connection for Session {
    fn open_uni(&self) -> BoxFuture<'_, Result<Box<dyn SendStream>, Error>> {
        Box::pin(async move {
            let send = Session::open_uni(self).await.map_err(session_error)?;
            Ok(Box::new(send) as Box<dyn SendStream>)
        })
    }

    fn open_bi(&self) -> BoxFuture<'_, Result<BiStream, Error>> {
        Box::pin(async move {
            let (send, recv) = Session::open_bi(self).await.map_err(session_error)?;
            Ok(boxed(send, recv))
        })
    }

    fn accept_uni(&self) -> BoxFuture<'_, Result<Box<dyn RecvStream>, Error>> {
        Box::pin(async move {
            let recv = Session::accept_uni(self).await.map_err(session_error)?;
            Ok(Box::new(recv) as Box<dyn RecvStream>)
        })
    }

    fn accept_bi(&self) -> BoxFuture<'_, Result<BiStream, Error>> {
        Box::pin(async move {
            let (send, recv) = Session::accept_bi(self).await.map_err(session_error)?;
            Ok(boxed(send, recv))
        })
    }

    fn close(&self, code: u32, reason: &[u8]) {
        Session::close(self, code, reason)
    }

    fn closed(&self) -> BoxFuture<'_, Error> {
        Box::pin(async move { session_error(Session::closed(self).await) })
    }

    fn protocol(&self) -> Option<String> {
        Session::protocol(self).map(str::to_string)
    }

    fn kind(&self) -> Kind {
        match self.request() {
            Some(_) => Kind::WebTransport,
            None => Kind::Quic,
        }
    }

    fn stats(&self) -> Stats {
        let stats = quinn::Connection::stats(self);
        Stats {
            rtt: Some(stats.path.rtt),
            cwnd: Some(stats.path.cwnd),
            send_rate: None,
            bytes_sent: stats.udp_tx.bytes,
            bytes_received: stats.udp_rx.bytes,
        }
    }

    fn set_max_streams(&self, bidi: bool, n: u64) {
        let n = quinn::VarInt::from_u64(n).unwrap_or(quinn::VarInt::MAX);
        match bidi {
            true => self.set_max_concurrent_bi_streams(n),
            false => self.set_max_concurrent_uni_streams(n),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The full QUIC counters of a connection made from a `web_transport_quinn::Session`, or
/// `None` for other transports.
pub fn quinn_stats(session: &crate::Session) -> Option<quinn::ConnectionStats> {
    let session = session.downcast_ref::<Session>()?;
    Some(quinn::Connection::stats(session))
}

impl SendStream for QuinnSend {
    fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { QuinnSend::write_all(self, buf).await.map_err(write_error) })
    }

    fn write_chunk(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            QuinnSend::write_chunk(self, chunk)
                .await
                .map_err(write_error)
        })
    }

    fn write_chunks<'a>(&'a mut self, chunks: &'a mut [Bytes]) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            QuinnSend::write_all_chunks(self, chunks)
                .await
                .map_err(write_error)
        })
    }

    fn set_priority(&mut self, priority: i32) {
        let _ = QuinnSend::set_priority(self, priority);
    }

    fn finish(&mut self) {
        let _ = QuinnSend::finish(self);
    }

    fn reset(&mut self, code: u32) {
        let _ = QuinnSend::reset(self, code);
    }

    fn stopped(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = QuinnSend::stopped(self).await;
        })
    }
}

impl RecvStream for QuinnRecv {
    fn read_chunk(&mut self, max: usize) -> BoxFuture<'_, Result<Option<Bytes>, Error>> {
        Box::pin(async move {
            Ok(QuinnRecv::read_chunk(self, max, true)
                .await
                .map_err(read_error)?
                .map(|chunk| chunk.bytes))
        })
    }

    fn stop(&mut self, code: u32) {
        let _ = QuinnRecv::stop(self, code);
    }
}
