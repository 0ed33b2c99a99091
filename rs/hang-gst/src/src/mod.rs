//! `hangsrc`: play a hang broadcast from a relay.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `hangsrc` element: a bin with one `appsrc` per rendition, exposed as `video_%u` /
    /// `audio_%u` sometimes pads.
    pub struct HangSrc(ObjectSubclass<imp::HangSrc>) @extends gst::Bin, gst::Element, gst::Object;
}

/// Register `hangsrc` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "hangsrc",
        gst::Rank::NONE,
        HangSrc::static_type(),
    )
}
