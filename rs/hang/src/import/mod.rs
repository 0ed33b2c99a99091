//! Turn media streams into a hang broadcast.
