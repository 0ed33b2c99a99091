//! `hangsink`: publish elementary streams as a hang broadcast through a relay.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `hangsink` element: a bin with one `appsink` per requested `sink_%u` pad.
    pub struct HangSink(ObjectSubclass<imp::HangSink>) @extends gst::Bin, gst::Element, gst::Object;
}

/// Register `hangsink` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "hangsink",
        gst::Rank::NONE,
        HangSink::static_type(),
    )
}
