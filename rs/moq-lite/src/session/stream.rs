//! Buffered message reading and writing over one QUIC stream.

use bytes::{Buf, Bytes, BytesMut};
use moq_io::{RecvStream, SendStream};

use crate::coding::{Decode, DecodeError, Encode, Version, MAX_MESSAGE_SIZE};
use crate::Error;

/// The most bytes buffered while waiting for one message to complete.
const MAX_BUFFER: usize = MAX_MESSAGE_SIZE as usize + 64;

/// A session-level failure, its close code read as spec §8 (where the version is not at hand:
/// opening a stream, the handshake).
pub(crate) fn session_error(err: moq_io::Error) -> Error {
    session_error_for(err, Version::Lite05)
}

/// A transport failure, its code read in the table of `version`'s peers: a connection close
/// code as a session code, a stream reset or stop as a stream code.
pub(crate) fn session_error_for(err: moq_io::Error, version: Version) -> Error {
    match err {
        moq_io::Error::Closed { code, .. } => Error::from_session_code(code, version),
        moq_io::Error::Stream(code) => Error::from_stream_code(code, version),
        moq_io::Error::Other(err) => Error::Transport(err),
    }
}

/// Reads length-prefixed messages and raw payload bytes from a receive stream.
pub(crate) struct Reader {
    stream: Box<dyn RecvStream>,
    buffer: BytesMut,
    version: Version,
}

impl Reader {
    pub fn new(stream: Box<dyn RecvStream>, version: Version) -> Self {
        Self {
            stream,
            buffer: BytesMut::new(),
            version,
        }
    }

    /// Read more bytes into the buffer; false at the end of the stream.
    async fn fill(&mut self) -> Result<bool, Error> {
        if self.buffer.len() >= MAX_BUFFER {
            return Err(Error::Decode(DecodeError::TooLarge {
                what: "buffered message",
                len: self.buffer.len() as u64,
                max: MAX_BUFFER as u64,
            }));
        }
        match self
            .stream
            .read_chunk(MAX_BUFFER - self.buffer.len())
            .await
            .map_err(|e| session_error_for(e, self.version))?
        {
            Some(chunk) => {
                self.buffer.extend_from_slice(&chunk);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Decode one message; `None` on a clean end of stream before any of its bytes.
    pub async fn decode_maybe<T: Decode>(&mut self) -> Result<Option<T>, Error> {
        loop {
            if !self.buffer.is_empty() {
                let mut cursor = &self.buffer[..];
                match T::decode(&mut cursor, self.version) {
                    Ok(msg) => {
                        let used = self.buffer.len() - cursor.len();
                        self.buffer.advance(used);
                        return Ok(Some(msg));
                    }
                    Err(DecodeError::Short) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            if !self.fill().await? {
                return match self.buffer.is_empty() {
                    true => Ok(None),
                    false => Err(Error::Decode(DecodeError::Truncated)),
                };
            }
        }
    }

    /// Decode one message; the stream ending first is an error.
    pub async fn decode<T: Decode>(&mut self) -> Result<T, Error> {
        self.decode_maybe()
            .await?
            .ok_or(Error::Decode(DecodeError::Short))
    }

    /// Up to `max` payload bytes; `None` at the end of the stream.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, Error> {
        if !self.buffer.is_empty() {
            let n = max.min(self.buffer.len());
            return Ok(Some(self.buffer.split_to(n).freeze()));
        }
        self.stream
            .read_chunk(max)
            .await
            .map_err(|e| session_error_for(e, self.version))
    }

    /// Wait for the peer to finish (`Ok`) or reset (`Err`) the stream; any further bytes are a violation.
    pub async fn closed(&mut self) -> Result<(), Error> {
        if !self.buffer.is_empty() || self.fill().await? {
            return Err(Error::ProtocolViolation("unexpected bytes on stream"));
        }
        Ok(())
    }

    /// Ask the peer to stop sending.
    pub fn stop(&mut self, err: &Error) {
        self.stream.stop(err.stream_code(self.version));
    }
}

/// Encodes messages onto a send stream. Dropping it without [`Writer::finish`] resets the stream (code 0).
pub(crate) struct Writer {
    stream: Box<dyn SendStream>,
    buffer: Vec<u8>,
    /// Headers [`Writer::queue`]d to go out with the next payload chunk: one write (one lock of
    /// the connection, one wake-up of its driver) instead of one per header.
    pending: BytesMut,
    version: Version,
    done: bool,
}

impl Writer {
    pub fn new(stream: Box<dyn SendStream>, version: Version) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
            pending: BytesMut::new(),
            version,
            done: false,
        }
    }

    /// Encode a message to be written together with the next [`Writer::write`] or
    /// [`Writer::flush`] (data-stream headers: they are useless to the peer without what follows).
    pub fn queue<T: Encode>(&mut self, msg: &T) {
        msg.encode(&mut self.pending, self.version);
    }

    /// Write whatever is queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = self.pending.split().freeze();
        self.stream
            .write_chunk(pending)
            .await
            .map_err(|e| session_error_for(e, self.version))
    }

    /// Encode and write one message (or stream header).
    pub async fn encode<T: Encode>(&mut self, msg: &T) -> Result<(), Error> {
        self.buffer.clear();
        msg.encode(&mut self.buffer, self.version);
        self.stream
            .write_all(&self.buffer)
            .await
            .map_err(|e| session_error_for(e, self.version))
    }

    /// Write several payload chunks without copying, after anything queued: one write (one lock
    /// of the connection) for all of them. Empties `chunks`.
    pub async fn write_chunks(&mut self, chunks: &mut Vec<Bytes>) -> Result<(), Error> {
        if !self.pending.is_empty() {
            chunks.insert(0, self.pending.split().freeze());
        }
        let result = self
            .stream
            .write_chunks(chunks)
            .await
            .map_err(|e| session_error_for(e, self.version));
        chunks.clear();
        result
    }

    /// Set the QUIC send priority (higher is sent first).
    pub fn set_priority(&mut self, priority: i32) {
        self.stream.set_priority(priority);
    }

    /// Finish the stream (FIN).
    pub fn finish(&mut self) {
        self.done = true;
        self.stream.finish();
    }

    /// Resolves once the peer has acknowledged everything written (after [`Writer::finish`]) or
    /// stopped the stream, or the session is gone.
    pub async fn acknowledged(&mut self) {
        self.stream.stopped().await;
    }

    /// Reset the stream with an error code (also after [`Writer::finish`], discarding what was
    /// not sent yet).
    pub fn reset(&mut self, err: &Error) {
        self.done = true;
        self.stream.reset(err.stream_code(self.version));
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.done {
            self.stream.reset(Error::Cancel.stream_code(self.version));
        }
    }
}
