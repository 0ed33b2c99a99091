//! A misbehaving peer gets a clear error code on its stream or session; everyone else keeps being served.

mod common;

use std::time::Duration;

use common::*;
use moq_lite::{Error, Track, TrackInfo};
use moq_native::web_transport_quinn::{ReadError, Session as Transport};

/// Open a bidi stream, write `bytes`, and return the reset code the relay answers with.
async fn reset_code(transport: &Transport, bytes: &[u8]) -> u32 {
    let (mut send, mut recv) = transport.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    let result = tokio::time::timeout(TIMEOUT, recv.read_to_end(1 << 20))
        .await
        .expect("no answer");
    match result {
        Err(moq_native::web_transport_quinn::ReadToEndError::ReadError(ReadError::Reset(code))) => {
            code
        }
        other => panic!("expected a reset, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_streams_are_reset_and_the_session_survives() {
    let relay = relay(&[]);
    let broadcast = moq_lite::BroadcastProducer::new();
    let track = broadcast.create_track(Track::new("t"), TrackInfo::default());
    relay
        .origin
        .publish_broadcast(&path("live"), broadcast.consume())
        .unwrap();
    write_group(&track, 1, 10);

    let bad = raw_peer(&relay).await;
    // Unknown bidi stream type → code 10 (unexpected stream).
    assert_eq!(
        reset_code(&bad, &[0x3f]).await,
        Error::UnexpectedStream(0).code()
    );
    // SUBSCRIBE whose length says 21 bytes but whose body is garbage → code 5 (decode).
    assert_eq!(reset_code(&bad, &[0x02, 0x03, 0x00, 0x40, 0xff]).await, 5);
    // A length prefix far beyond the message limit is refused as soon as it is read → code 5.
    assert_eq!(reset_code(&bad, &[0x02, 0xbf, 0xff, 0xff, 0xff]).await, 5);
    // SUBSCRIBE for a broadcast that does not exist → code 13 (not found).
    let subscribe = [
        0x02, 0x0d, 0x00, 0x04, b'n', b'o', b'n', b'e', 0x01, b't', 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_eq!(reset_code(&bad, &subscribe).await, 13);
    // A bidi stream that lies about being the compat SETUP is not allowed on lite-05 → code 10.
    assert_eq!(reset_code(&bad, &[0x20, 0x00, 0x01, 0x00]).await, 10);
    // The same session is still served.
    let ok = [
        0x02, 0x0d, 0x01, 0x04, b'l', b'i', b'v', b'e', 0x01, b't', 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    let (mut send, mut recv) = bad.open_bi().await.unwrap();
    send.write_all(&ok).await.unwrap();
    let mut buf = [0u8; 3];
    tokio::time::timeout(TIMEOUT, recv.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf, [0x00, 0x01, 0x00], "SUBSCRIBE_OK(start group 0)");

    // And so is everyone else.
    let (_good, remote) = relay.watch(Via::WebTransport, "live").await;
    let mut consumer = remote.subscribe_track(&Track::new("t"));
    let group = tokio::time::timeout(TIMEOUT, consumer.next_group())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(group.info().sequence, 0);
}

#[tokio::test]
async fn a_second_setup_closes_the_session_with_protocol_violation() {
    let relay = relay(&[]);
    let bad = raw_peer(&relay).await;
    let mut again = bad.open_uni().await.unwrap();
    again.write_all(&[0x01, 0x01, 0x00]).await.unwrap();
    again.finish().unwrap();
    let err = tokio::time::timeout(TIMEOUT, bad.closed())
        .await
        .expect("session stayed open");
    assert!(
        err.to_string().contains("15"),
        "expected code 15, got {err}"
    );
}

#[tokio::test]
async fn a_frame_cut_short_aborts_only_that_group() {
    // The subscriber side: a publisher (raw peer) sends a group stream whose frame is shorter than
    // declared; the group is aborted with WrongSize and the session stays up.
    let relay = relay(&[]);
    let bad = raw_peer(&relay).await;
    // Announce ourselves to the relay: it asks with an Announce stream; answer OK + one broadcast.
    let (mut send, mut recv) = tokio::time::timeout(TIMEOUT, bad.accept_bi())
        .await
        .unwrap()
        .unwrap();
    let mut head = [0u8; 3];
    recv.read_exact(&mut head).await.unwrap(); // 01 (Announce) + length + prefix len …
    send.write_all(&[0x02, 0x00, 0x01, 0x06, 0x01, 0x03, b'b', b'a', b'd', 0x00])
        .await
        .unwrap();
    // The relay has no viewer yet; a viewer appears and the relay subscribes upstream (to us).
    let (_viewer, remote) = relay.watch(Via::WebTransport, "bad").await;
    let mut consumer = remote.subscribe_track(&Track::new("t"));
    // TRACK request → answer TRACK_INFO.
    let (mut tsend, mut trecv) = tokio::time::timeout(TIMEOUT, bad.accept_bi())
        .await
        .unwrap()
        .unwrap();
    let mut tbuf = [0u8; 1];
    trecv.read_exact(&mut tbuf).await.unwrap();
    assert_eq!(tbuf[0], 0x06, "TRACK stream first");
    tsend
        .write_all(&[0x06, 0x00, 0x00, 0x53, 0x88, 0x43, 0xe8])
        .await
        .unwrap();
    tsend.finish().unwrap();
    // SUBSCRIBE → answer with a group whose frame declares 10 bytes but carries 3.
    let (mut ssend, mut srecv) = tokio::time::timeout(TIMEOUT, bad.accept_bi())
        .await
        .unwrap()
        .unwrap();
    let mut sbuf = [0u8; 3];
    srecv.read_exact(&mut sbuf).await.unwrap();
    assert_eq!(sbuf[0], 0x02, "SUBSCRIBE stream");
    let id = sbuf[2];
    ssend.write_all(&[0x00, 0x01, 0x00]).await.unwrap();
    // The relay's own copy of the track (the one its session with us feeds), held before the
    // group is sent, so group 0 cannot be skipped or gone before it is looked at.
    let mut upstream = relay
        .origin
        .consume()
        .consume_broadcast(&path("bad"))
        .expect("the relay has our broadcast")
        .subscribe_track(&Track::new("t"));
    let mut group = bad.open_uni().await.unwrap();
    group
        .write_all(&[0x00, 0x02, id, 0x00, 0x00, 0x0a, b'a', b'b', b'c'])
        .await
        .unwrap();
    group.finish().unwrap();

    // The relay's session aborts that group with WrongSize: its one frame is cut short, and the
    // group ends with that error, not with a finish or any other error.
    let mut cut = tokio::time::timeout(TIMEOUT, upstream.next_group())
        .await
        .expect("group 0 never reached the relay")
        .expect("track open")
        .expect("track not finished");
    assert_eq!(cut.info().sequence, 0);
    let mut frame = tokio::time::timeout(TIMEOUT, cut.next_frame())
        .await
        .expect("frame 0 never started")
        .expect("frame 0 was created")
        .expect("group 0 has a frame");
    assert_eq!(frame.info().size, 10);
    let partial = tokio::time::timeout(TIMEOUT, frame.read_all())
        .await
        .expect("frame 0 never ended");
    assert!(
        partial.is_err(),
        "a 10-byte frame carrying 3 bytes was read whole: {partial:?}"
    );
    let end = tokio::time::timeout(TIMEOUT, cut.next_frame())
        .await
        .expect("group 0 never ended");
    assert!(
        matches!(end, Err(Error::WrongSize)),
        "group 0 must be aborted with WrongSize, got {end:?}"
    );
    assert_eq!(cut.closed(), Some(Err(Error::WrongSize)));

    // Then a good group: it arrives intact, so only the bad group was lost.
    let mut good = bad.open_uni().await.unwrap();
    good.write_all(&[0x00, 0x02, id, 0x01, 0x00, 0x02, b'o', b'k'])
        .await
        .unwrap();
    good.finish().unwrap();

    consumer.set_max_latency(Duration::from_secs(10));
    let payload = tokio::time::timeout(TIMEOUT, async {
        loop {
            let mut group = consumer.next_group().await.unwrap().expect("track open");
            match group.read_frame().await {
                Ok(Some((_, payload))) if group.info().sequence == 1 => return payload,
                // The viewer may get group 0 aborted, or not at all (its reset can overtake
                // its header); the relay's own copy was checked above.
                Ok(_) | Err(_) => assert_eq!(group.info().sequence, 0),
            }
        }
    })
    .await
    .expect("the good group never arrived");
    assert_eq!(payload, "ok");
    assert!(
        bad.close_reason().is_none(),
        "the publisher's session stays up"
    );
}
