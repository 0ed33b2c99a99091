//! Fixtures made by ffmpeg into a temporary directory (removed on drop), and ffprobe checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::BytesMut;
use hang::export::{Fmp4Exporter, Fragment};
use hang::import::{Fmp4Importer, ImportError};
use hang::BroadcastProducer;
use serde_json::Value;

/// ffmpeg's flags for a live fMP4 stream with one fragment per frame (TESTING.md).
pub const FRAG_EVERY_FRAME: &[&str] = &[
    "-f",
    "mp4",
    "-movflags",
    "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame",
];

/// A temporary directory of fixtures.
pub struct Fixtures {
    dir: tempfile::TempDir,
}

impl Fixtures {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run ffmpeg with `args` writing `name`; panics with ffmpeg's stderr on failure.
    pub fn ffmpeg(&self, args: &[&str], name: &str) -> PathBuf {
        let out = self.path(name);
        let output = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .arg(&out)
            .output()
            .expect("ffmpeg is installed (apt-get install ffmpeg)");
        assert!(
            output.status.success(),
            "ffmpeg {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    }

    /// A test pattern (and a sine when `audio` is given) encoded with `video` flags as fMP4.
    pub fn fmp4(&self, name: &str, video: &[&str], audio: &[&str]) -> PathBuf {
        let mut args: Vec<&str> = Vec::new();
        if !video.is_empty() {
            args.extend(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"]);
        }
        if !audio.is_empty() {
            args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
        }
        args.extend(["-t", "1"]);
        if !video.is_empty() {
            args.extend(["-pix_fmt", "yuv420p"]);
        }
        args.extend(video);
        args.extend(audio);
        args.extend(FRAG_EVERY_FRAME);
        self.ffmpeg(&args, name)
    }
}

/// Panic with a clear message when ffmpeg lacks an encoder a fixture needs.
pub fn require_encoder(name: &str) {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .expect("ffmpeg is installed");
    let list = String::from_utf8_lossy(&output.stdout);
    assert!(
        list.split_whitespace().any(|w| w == name),
        "ffmpeg has no '{name}' encoder: install an ffmpeg built with it to run this fixture"
    );
}

/// `ffprobe -show_streams` (with extradata) as JSON.
pub fn streams(path: &Path) -> Vec<Value> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-show_data", "-show_streams", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    assert!(
        output.status.success(),
        "ffprobe rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("ffprobe JSON");
    json["streams"].as_array().cloned().unwrap_or_default()
}

/// A stream's extradata from ffprobe's hex dump.
pub fn extradata(stream: &Value) -> Vec<u8> {
    let dump = stream["extradata"].as_str().unwrap_or_default();
    let mut bytes = Vec::new();
    for line in dump.lines().filter(|l| l.contains(':')) {
        let hex: String = line[line.find(':').unwrap() + 1..]
            .chars()
            .take(41)
            .filter(|c| !c.is_whitespace())
            .collect();
        bytes.extend(hex::decode(hex).expect("hex dump"));
    }
    bytes
}

/// Presentation times (µs, relative to the stream's first packet) and keyframe flags of the
/// packets of stream `index`, in file order, as ffprobe reads them.
pub fn packets(path: &Path, index: usize) -> Vec<(i64, bool)> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams"])
        .arg(index.to_string())
        .args(["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    assert!(
        output.status.success(),
        "ffprobe rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let raw: Vec<(f64, bool)> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (pts, flags) = l.split_once(',').expect("pts,flags");
            (
                pts.parse::<f64>().unwrap_or(0.0), // "N/A" in raw streams
                flags.starts_with('K'),
            )
        })
        .collect();
    let first = raw.first().map_or(0.0, |p| p.0);
    raw.into_iter()
        .map(|(pts, key)| (((pts - first) * 1e6).round() as i64, key))
        .collect()
}

/// Feed `bytes` to an importer in chunks of varying size (seeded); returns what is left over.
pub fn feed(importer: &mut Fmp4Importer, bytes: &[u8]) -> Result<BytesMut, ImportError> {
    let mut buf = BytesMut::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rest = bytes;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let take = (1 + seed as usize % 7000).min(rest.len());
        buf.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        importer.decode(&mut buf)?;
    }
    Ok(buf)
}

/// Import a whole file.
pub fn import(bytes: &[u8]) -> Result<Fmp4Importer, ImportError> {
    let mut importer = Fmp4Importer::new(BroadcastProducer::new());
    let rest = feed(&mut importer, bytes)?;
    importer.finish(&rest)?;
    Ok(importer)
}

/// Run `export` (given `consumer` and a writer) while `finish` ends the input;
/// `finish` is called once the exporter has written its init segment (so it has subscribed to
/// every track: a finished track can no longer be subscribed to). Returns what was written.
pub async fn export<E, F>(
    consumer: hang::BroadcastConsumer,
    export: E,
    finish: impl FnOnce(),
) -> Vec<u8>
where
    E: FnOnce(hang::BroadcastConsumer, tokio::io::DuplexStream) -> F,
    F: std::future::Future<Output = Result<(), hang::export::ExportError>> + Send + 'static,
{
    use tokio::io::AsyncReadExt;
    let (writer, mut reader) = tokio::io::duplex(256 << 20);
    let task = tokio::spawn(export(consumer, writer));
    let mut written = vec![0u8; 1];
    let timeout = std::time::Duration::from_secs(30);
    let first = tokio::time::timeout(timeout, reader.read(&mut written))
        .await
        .expect("the exporter writes its init segment")
        .expect("read");
    written.truncate(first);
    finish();
    tokio::time::timeout(timeout, reader.read_to_end(&mut written))
        .await
        .expect("the exporter finishes")
        .expect("read");
    task.await.expect("export task").expect("export");
    written
}

/// Import an fMP4 file and export it again as fMP4 into `out`; returns the importer.
pub async fn round_trip(input: &Path, out: &Path, fragment: Fragment) -> Fmp4Importer {
    let bytes = std::fs::read(input).expect("fixture");
    let mut importer = Fmp4Importer::new(BroadcastProducer::new());
    let rest = feed(&mut importer, &bytes).expect("import");
    let consumer = importer.broadcast().consume();
    let written = export(
        consumer,
        |consumer, writer| {
            Fmp4Exporter::new(consumer)
                .fragment(fragment)
                .start_at_oldest()
                .run(writer)
        },
        || importer.finish(&rest).expect("finish"),
    )
    .await;
    std::fs::write(out, written).expect("write export");
    importer
}
