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
    let mut group = bad.open_uni().await.unwrap();
    group
        .write_all(&[0x00, 0x02, id, 0x00, 0x00, 0x0a, b'a', b'b', b'c'])
        .await
        .unwrap();
    group.finish().unwrap();

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
                // Group 0 may arrive aborted (WrongSize/Dropped) or not at all.
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
