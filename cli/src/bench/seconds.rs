//! How the JSON document writes a `Duration`: as seconds, an `f64`. Every
//! `Duration` field that is serialized says `#[serde(with = "super::seconds")]`.

use std::time::Duration;

/// Serializes `d` as its length in seconds (`f64`).
pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
