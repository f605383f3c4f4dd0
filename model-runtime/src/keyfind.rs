//! Which key a melody is in, from how long each pitch class sounded: the Krumhansl–Schmuckler
//! algorithm (Krumhansl, *Cognitive Foundations of Musical Pitch*, 1990, ch. 4) with the
//! Krumhansl–Kessler probe-tone profiles. The duration of each pitch class is correlated with
//! the major and the minor profile rotated to each of the twelve tonics; the best correlation
//! wins. The editor offers the result as a one-click key and scale.

use crate::controls::Scale;

/// Krumhansl–Kessler major profile, index 0 = tonic.
const MAJOR: [f32; 12] = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88];
/// Krumhansl–Kessler minor profile, index 0 = tonic.
const MINOR: [f32; 12] = [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17];

/// A suggested key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyEstimate {
    /// Tonic, 0 = C … 11 = B.
    pub key: u8,
    /// [`Scale::Major`] or [`Scale::NaturalMinor`].
    pub scale: Scale,
    /// Pearson correlation of the durations with the winning profile, −1..1.
    pub correlation: f32,
    /// How far the winner is ahead of the best other key (correlation difference, ≥ 0): small
    /// values mean the melody fits two keys about equally (e.g. a relative major and minor).
    pub margin: f32,
}

/// The most likely key of notes given as (MIDI note, seconds sounded). `None` when fewer than
/// three different pitch classes sounded (every key fits one or two notes about equally).
pub fn estimate_key(notes: impl IntoIterator<Item = (u8, f32)>) -> Option<KeyEstimate> {
    let mut durations = [0.0f32; 12];
    for (note, seconds) in notes {
        if seconds.is_finite() && seconds > 0.0 {
            durations[usize::from(note % 12)] += seconds;
        }
    }
    if durations.iter().filter(|&&d| d > 0.0).count() < 3 {
        return None;
    }
    let mut best: Option<KeyEstimate> = None;
    let mut second = f32::NEG_INFINITY;
    for (scale, profile) in [(Scale::Major, &MAJOR), (Scale::NaturalMinor, &MINOR)] {
        for key in 0..12u8 {
            // The profile rotated so that its tonic sits on `key`.
            let rotated: [f32; 12] = std::array::from_fn(|pc| profile[(pc + 12 - usize::from(key)) % 12]);
            let r = correlation(&durations, &rotated);
            match best {
                Some(b) if r <= b.correlation => second = second.max(r),
                _ => {
                    if let Some(b) = best {
                        second = second.max(b.correlation);
                    }
                    best = Some(KeyEstimate { key, scale, correlation: r, margin: 0.0 });
                }
            }
        }
    }
    best.map(|b| KeyEstimate { margin: b.correlation - second, ..b })
}

/// Pearson correlation of two 12-element vectors (0 when either is constant).
fn correlation(a: &[f32; 12], b: &[f32; 12]) -> f32 {
    let mean = |v: &[f32; 12]| v.iter().sum::<f32>() / 12.0;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma) * (x - ma);
        bb += (y - mb) * (y - mb);
    }
    if aa <= 0.0 || bb <= 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Twinkle, twinkle, little star" in C major, half a second per beat.
    fn twinkle() -> Vec<(u8, f32)> {
        [60, 60, 67, 67, 69, 69, 67, 67, 65, 65, 64, 64, 62, 62, 60, 60]
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, if i % 8 == 7 { 1.0 } else { 0.5 }))
            .collect()
    }

    #[test]
    fn a_major_melody_gives_its_key_in_every_transposition() {
        for shift in 0..12u8 {
            let notes = twinkle().into_iter().map(|(n, d)| (n + shift, d));
            let k = estimate_key(notes).expect("seven pitch classes");
            assert_eq!((k.key, k.scale), (shift, Scale::Major), "shifted by {shift}: {k:?}");
            assert!(k.correlation > 0.7 && k.margin > 0.0, "{k:?}");
        }
    }

    #[test]
    fn a_harmonic_minor_line_gives_the_minor_key() {
        // A minor: A B C D E F G# A, held tonic and dominant, then back down to A.
        let line = [(57, 1.0), (59, 0.25), (60, 0.5), (62, 0.25), (64, 1.0), (65, 0.25), (68, 0.5), (69, 1.0), (64, 0.5), (60, 0.5), (57, 1.5)];
        let k = estimate_key(line).expect("seven pitch classes");
        assert_eq!((k.key, k.scale), (9, Scale::NaturalMinor), "{k:?}");
    }

    #[test]
    fn too_few_pitch_classes_give_no_suggestion() {
        assert_eq!(estimate_key([]), None);
        assert_eq!(estimate_key([(60, 3.0), (72, 1.0), (67, 2.0), (62, 0.0), (64, f32::NAN)]), None);
        assert!(estimate_key([(60, 3.0), (64, 1.0), (67, 2.0)]).is_some());
    }
}
