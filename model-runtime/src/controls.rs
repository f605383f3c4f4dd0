//! The musician's knobs, as plain `Copy` values handed to the inference worker with every frame
//! (so a setting changes at a known frame, and an offline render is deterministic).

use serde::{Deserialize, Serialize};

/// Musical scale used by the note tracker's key snap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Scale {
    /// All twelve semitones: the sung pitch is rounded to the nearest semitone.
    #[default]
    Chromatic,
    Major,
    NaturalMinor,
    HarmonicMinor,
    MajorPentatonic,
    MinorPentatonic,
    Blues,
    Dorian,
    Mixolydian,
}

impl Scale {
    /// Every scale, in the order the parameter lists them.
    pub const ALL: [Scale; 9] = [
        Scale::Chromatic,
        Scale::Major,
        Scale::NaturalMinor,
        Scale::HarmonicMinor,
        Scale::MajorPentatonic,
        Scale::MinorPentatonic,
        Scale::Blues,
        Scale::Dorian,
        Scale::Mixolydian,
    ];

    /// Semitone offsets from the tonic that belong to the scale.
    pub fn degrees(self) -> &'static [u8] {
        match self {
            Scale::Chromatic => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
            Scale::Major => &[0, 2, 4, 5, 7, 9, 11],
            Scale::NaturalMinor => &[0, 2, 3, 5, 7, 8, 10],
            Scale::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
            Scale::MajorPentatonic => &[0, 2, 4, 7, 9],
            Scale::MinorPentatonic => &[0, 3, 5, 7, 10],
            Scale::Blues => &[0, 3, 5, 6, 7, 10],
            Scale::Dorian => &[0, 2, 3, 5, 7, 9, 10],
            Scale::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
        }
    }

    /// Lower-case name used by the CLI and presets.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Chromatic => "chromatic",
            Scale::Major => "major",
            Scale::NaturalMinor => "minor",
            Scale::HarmonicMinor => "harmonic-minor",
            Scale::MajorPentatonic => "major-pentatonic",
            Scale::MinorPentatonic => "minor-pentatonic",
            Scale::Blues => "blues",
            Scale::Dorian => "dorian",
            Scale::Mixolydian => "mixolydian",
        }
    }

    /// Parse a name as written by [`Scale::name`].
    pub fn from_name(name: &str) -> Option<Scale> {
        Scale::ALL.into_iter().find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// Whether pitch class `pc` (0 = C) is in this scale on tonic `key` (0 = C).
    pub fn contains(self, key: u8, pc: u8) -> bool {
        let rel = (pc + 12 - key % 12) % 12;
        self.degrees().contains(&rel)
    }

    /// The scale note nearest to the continuous MIDI pitch `pitch` (ties go down).
    pub fn snap(self, key: u8, pitch: f32) -> i32 {
        let base = pitch.round() as i32;
        let mut best = base;
        let mut best_dist = f32::INFINITY;
        for cand in (base - 6)..=(base + 6) {
            if self.contains(key, cand.rem_euclid(12) as u8) {
                let d = (cand as f32 - pitch).abs();
                if d < best_dist - 1e-6 {
                    best = cand;
                    best_dist = d;
                }
            }
        }
        best
    }
}

/// Names of the twelve keys, index 0 = C.
pub const KEY_NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

/// Parse a key name such as `C`, `F#`, `Bb`.
pub fn key_from_name(name: &str) -> Option<u8> {
    let flats = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"];
    (0..12u8).find(|&i| {
        KEY_NAMES[i as usize].eq_ignore_ascii_case(name) || flats[i as usize].eq_ignore_ascii_case(name)
    })
}

/// Settings for the listener's decisions, the note tracker and the pianist.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Controls {
    /// 0..1: higher hears quieter and breathier singing as notes (and more noise).
    pub sensitivity: f32,
    /// Milliseconds: a note is held at least this long before it may change or stop.
    pub min_note_ms: f32,
    /// Tonic of the key snap, 0 = C … 11 = B.
    pub key: u8,
    /// Scale of the key snap.
    pub scale: Scale,
    /// Semitones added after snapping, −24..=24.
    pub transpose: i32,
    /// Velocity curve exponent, 0.25..4: below 1 lifts soft singing, above 1 needs more voice.
    pub velocity_response: f32,
    /// −1..1: darker to brighter piano.
    pub tone: f32,
    /// Milliseconds: damper release time after the note ends.
    pub release_ms: f32,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            sensitivity: 0.5,
            min_note_ms: 60.0,
            key: 0,
            scale: Scale::Chromatic,
            transpose: 0,
            velocity_response: 1.0,
            tone: 0.0,
            release_ms: 250.0,
        }
    }
}

impl Controls {
    /// The same settings with every field forced into its documented range (NaN → default).
    pub fn sanitized(self) -> Controls {
        let d = Controls::default();
        let fin = |v: f32, dv: f32, lo: f32, hi: f32| if v.is_finite() { v.clamp(lo, hi) } else { dv };
        Controls {
            sensitivity: fin(self.sensitivity, d.sensitivity, 0.0, 1.0),
            min_note_ms: fin(self.min_note_ms, d.min_note_ms, 0.0, 1000.0),
            key: self.key % 12,
            scale: self.scale,
            transpose: self.transpose.clamp(-24, 24),
            velocity_response: fin(self.velocity_response, d.velocity_response, 0.25, 4.0),
            tone: fin(self.tone, d.tone, -1.0, 1.0),
            release_ms: fin(self.release_ms, d.release_ms, 10.0, 3000.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_to_scale() {
        // C major: C#4 (61) snaps down to C (ties go down), 61.6 snaps up to D.
        assert_eq!(Scale::Major.snap(0, 61.0), 60);
        assert_eq!(Scale::Major.snap(0, 61.6), 62);
        assert_eq!(Scale::Chromatic.snap(0, 61.4), 61);
        // A minor pentatonic (A C D E G): 71 (B) → 69 (A)? B is 2 from A and 1 from C → C (72).
        assert_eq!(Scale::MinorPentatonic.snap(9, 71.0), 72);
        for s in Scale::ALL {
            assert_eq!(Scale::from_name(s.name()), Some(s));
        }
        assert_eq!(key_from_name("Bb"), Some(10));
        assert_eq!(key_from_name("f#"), Some(6));
    }
}
