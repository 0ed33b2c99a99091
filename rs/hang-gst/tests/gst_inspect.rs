//! `gst-inspect-1.0 hangsink` / `hangsrc` with GST_PLUGIN_PATH at the build output: the plugin
//! loads from its shared library and every property is listed with its description.

mod common;

use std::process::Command;

use common::{init, plugin_dir, Run};
use gst::prelude::*;

fn inspect(run: &Run, element: &str) -> String {
    let output = Command::new("gst-inspect-1.0")
        .arg(element)
        .env("GST_PLUGIN_PATH", plugin_dir(run))
        // A registry of our own: nothing cached from another build, nothing left in $HOME.
        .env("GST_REGISTRY", run.path("registry.bin"))
        .output()
        .expect("gst-inspect-1.0 (scripts/test.sh installs gstreamer1.0-tools)");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "gst-inspect-1.0 {element}: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

#[test]
fn gst_inspect_lists_every_property_with_a_description() {
    init();
    let run = Run::new("gst-inspect");
    for name in ["hangsink", "hangsrc"] {
        let text = inspect(&run, name);
        assert!(text.contains("MIT/X11"), "{text}");
        let element = gst::ElementFactory::make(name).build().unwrap();
        let ours: Vec<_> = element
            .list_properties()
            .into_iter()
            .filter(|p| p.owner_type() == element.type_())
            .collect();
        assert!(ours.len() >= 8, "{name}: {} properties", ours.len());
        for property in ours {
            let blurb = property.blurb().unwrap_or_default();
            assert!(
                blurb.len() > 15,
                "{name}.{} has no description",
                property.name()
            );
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{} ", property.name())))
                .unwrap_or_else(|| panic!("{name}: {} not listed\n{text}", property.name()));
            assert!(
                line.contains(&blurb[..20]),
                "{name}: {line} lacks {blurb:?}"
            );
        }
        for pad in if name == "hangsink" {
            ["sink_%u"].as_slice()
        } else {
            &["video_%u", "audio_%u"]
        } {
            assert!(text.contains(pad), "{name}: pad template {pad}\n{text}");
        }
    }
}
