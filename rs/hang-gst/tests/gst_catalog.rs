//! hangsrc follows catalog updates: a publisher (our hang library, in this process) starts
//! with one video rendition, adds an audio rendition, then drops the video one; hangsrc adds an
//! `audio_0` pad for the new rendition while `video_0` keeps flowing, then ends `video_0` (EOS)
//! when its rendition leaves the catalog.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{start_relay, wait_for, Run};
use gst::prelude::*;
use hang::catalog::{AudioConfig, VideoConfig};

/// A pipeline of hangsrc whose pads each get a fakesink as they appear; what reached each sink,
/// by pad name: buffer count and whether EOS came.
struct Player {
    pipeline: gst::Pipeline,
    seen: Arc<Mutex<Vec<(String, usize, bool)>>>,
}

impl Player {
    fn start(url: &str, broadcast: &str) -> Self {
        common::init();
        let pipeline = gst::Pipeline::new();
        let src = gst::ElementFactory::make("hangsrc")
            .name("src")
            .property("url", url)
            .property("broadcast", broadcast)
            .property("latency", 0u32)
            .build()
            .unwrap();
        pipeline.add(&src).unwrap();
        let seen: Arc<Mutex<Vec<(String, usize, bool)>>> = Arc::default();
        let weak = pipeline.downgrade();
        let record = seen.clone();
        src.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .build()
                .unwrap();
            pipeline.add(&sink).unwrap();
            sink.sync_state_with_parent().unwrap();
            let name = pad.name().to_string();
            let index = {
                let mut seen = record.lock().unwrap();
                seen.push((name, 0, false));
                seen.len() - 1
            };
            let counts = record.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                move |_, info| {
                    let mut seen = counts.lock().unwrap();
                    match &info.data {
                        Some(gst::PadProbeData::Buffer(_)) => seen[index].1 += 1,
                        Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Eos => {
                            seen[index].2 = true
                        }
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        Self { pipeline, seen }
    }

    fn pad(&self, name: &str) -> Option<(usize, bool)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, c, e)| (*c, *e))
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[test]
fn hangsrc_follows_catalog_updates() {
    let mut run = Run::new("gst-catalog");
    let relay = start_relay(&mut run, "relay", None);
    let url = relay.http_url("/anon");
    let runtime = gsthang::runtime();

    // The publisher: one H.264 rendition to begin with.
    let mut broadcast = hang::BroadcastProducer::new();
    let video = broadcast.add_video(VideoConfig {
        codec: "avc3.42c01e".into(),
        coded_width: Some(320),
        coded_height: Some(240),
        ..Default::default()
    });
    broadcast.publish_catalog().unwrap();
    let origin = moq_lite::OriginProducer::new();
    {
        let _runtime = runtime.enter();
        origin
            .publish_broadcast(
                &moq_lite::Path::new("updates.hang").unwrap(),
                broadcast.inner().consume(),
            )
            .unwrap();
    }
    let settings = gsthang::client::Settings {
        url: Some(url.clone()),
        broadcast: Some("updates.hang".into()),
        ..Default::default()
    };
    let (parsed, _) = settings.validate().unwrap();
    let client = settings.client().unwrap();
    let session = runtime
        .block_on(gsthang::client::open(&client, &parsed, |c| {
            c.publish(origin.consume())
        }))
        .expect("publisher session");

    // Frames: video every 33 ms (a keyframe every 15), audio every 20 ms once it exists.
    let video = Arc::new(Mutex::new(video));
    let audio: Arc<Mutex<Option<hang::TrackProducer>>> = Arc::default();
    let writer = {
        let (video, audio) = (video.clone(), audio.clone());
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for n in 0u64.. {
                tick.tick().await;
                let t = n * 10_000;
                if n % 3 == 0 {
                    let frame = hang::Frame {
                        timestamp: t,
                        keyframe: n % 45 == 0,
                        payload: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
                    };
                    let _ = video.lock().unwrap().write(frame);
                }
                if n % 2 == 0 {
                    if let Some(audio) = audio.lock().unwrap().as_mut() {
                        let _ = audio.write(hang::Frame {
                            timestamp: t,
                            keyframe: true,
                            payload: Bytes::from_static(b"opus"),
                        });
                    }
                }
            }
        })
    };

    let player = Player::start(&url, "updates.hang");
    wait_for("video_0 flowing", Duration::from_secs(15), || {
        player
            .pad("video_0")
            .filter(|(count, _)| *count >= 10)
            .map(|_| ())
    });
    assert!(player.pad("audio_0").is_none());

    // An audio rendition appears in the catalog: a new pad, the video goes on.
    {
        let _runtime = runtime.enter();
        let track = broadcast.add_audio(AudioConfig {
            codec: "opus".into(),
            sample_rate: 48_000,
            number_of_channels: 2,
            ..Default::default()
        });
        *audio.lock().unwrap() = Some(track);
        broadcast.publish_catalog().unwrap();
    }
    let before = player.pad("video_0").unwrap().0;
    wait_for("audio_0 added and flowing", Duration::from_secs(15), || {
        player
            .pad("audio_0")
            .filter(|(count, _)| *count >= 10)
            .map(|_| ())
    });
    assert!(
        player.pad("video_0").unwrap().0 > before,
        "video stopped when audio was added"
    );

    // The video rendition leaves the catalog: its pad ends, the audio goes on.
    {
        let _runtime = runtime.enter();
        broadcast.remove("video0");
        broadcast.publish_catalog().unwrap();
    }
    wait_for("EOS on video_0", Duration::from_secs(15), || {
        player.pad("video_0").filter(|(_, eos)| *eos).map(|_| ())
    });
    let audio_before = player.pad("audio_0").unwrap().0;
    wait_for("audio goes on", Duration::from_secs(15), || {
        player
            .pad("audio_0")
            .filter(|(count, _)| *count >= audio_before + 10)
            .map(|_| ())
    });
    assert_eq!(
        player
            .pipeline
            .by_name("src")
            .map(|src| src.property::<String>("catalog").contains("video0")),
        Some(false),
        "hangsrc reports the newest catalog"
    );
    writer.abort();
    drop(player);
    runtime.block_on(gsthang::client::hang_up(&client, &session));
}
