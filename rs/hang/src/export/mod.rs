//! Turn a hang broadcast back into a media stream.
