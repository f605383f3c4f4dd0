//! Note-level evaluation with mir_eval's transcription definitions (onset within ±50 ms,
//! pitch within ±50 cents, offsets ignored, each note matched at most once), and the random
//! sung melodies it is measured on.
//!
//! Like mir_eval, the matching is a maximum bipartite matching over the pairs that satisfy both
//! tolerances (Kuhn's augmenting paths, candidates tried nearest onset first; written by hand:
//! no Rust crate implements mir_eval, and the sets are a few hundred notes). A greedy matching
//! by onset distance, used before, counted fewer matches where notes lie closer than 100 ms
//! (melismas): 161 instead of mir_eval's 163 on one measured set.

use crate::singer::{SungNote, VoiceType, Vowel};

/// A note as (onset seconds, MIDI pitch).
pub type Note = (f32, f32);

#[derive(Debug, Clone, Default)]
pub struct NoteScore {
    pub n_ref: usize,
    pub n_est: usize,
    pub matched: usize,
    /// Signed onset errors of matched notes, seconds (estimate − reference).
    pub onset_errors: Vec<f32>,
}

impl NoteScore {
    pub fn precision(&self) -> f32 {
        if self.n_est == 0 { 0.0 } else { self.matched as f32 / self.n_est as f32 }
    }
    pub fn recall(&self) -> f32 {
        if self.n_ref == 0 { 0.0 } else { self.matched as f32 / self.n_ref as f32 }
    }
    pub fn f1(&self) -> f32 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
    }
    pub fn add(&mut self, other: &NoteScore) {
        self.n_ref += other.n_ref;
        self.n_est += other.n_est;
        self.matched += other.matched;
        self.onset_errors.extend_from_slice(&other.onset_errors);
    }
    /// Median signed onset error, ms.
    pub fn median_onset_error_ms(&self) -> f32 {
        let mut v = self.onset_errors.clone();
        if v.is_empty() {
            return f32::NAN;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2] * 1000.0
    }
    /// Latest matched onset, ms.
    pub fn max_late_ms(&self) -> f32 {
        self.onset_errors.iter().fold(f32::NEG_INFINITY, |m, &e| m.max(e)) * 1000.0
    }
}

/// Score estimated notes against reference notes (maximum matching, as mir_eval).
pub fn score_notes(reference: &[Note], estimated: &[Note], onset_tol_s: f32, pitch_tol_semitones: f32) -> NoteScore {
    // Candidates of each reference note, nearest onset first.
    let cands: Vec<Vec<usize>> = reference
        .iter()
        .map(|r| {
            let mut c: Vec<(f32, usize)> = estimated
                .iter()
                .enumerate()
                .filter(|(_, e)| (e.0 - r.0).abs() <= onset_tol_s && (e.1 - r.1).abs() <= pitch_tol_semitones)
                .map(|(j, e)| ((e.0 - r.0).abs(), j))
                .collect();
            c.sort_by(|a, b| a.0.total_cmp(&b.0));
            c.into_iter().map(|(_, j)| j).collect()
        })
        .collect();
    fn augment(i: usize, cands: &[Vec<usize>], seen: &mut [bool], owner: &mut [Option<usize>]) -> bool {
        for &j in &cands[i] {
            if !seen[j] {
                seen[j] = true;
                if owner[j].is_none_or(|o| augment(o, cands, seen, owner)) {
                    owner[j] = Some(i);
                    return true;
                }
            }
        }
        false
    }
    let mut owner: Vec<Option<usize>> = vec![None; estimated.len()];
    // References in onset order (the matching's size does not depend on the order).
    let mut order: Vec<usize> = (0..reference.len()).collect();
    order.sort_by(|&a, &b| reference[a].0.total_cmp(&reference[b].0));
    for i in order {
        let mut seen = vec![false; estimated.len()];
        augment(i, &cands, &mut seen, &mut owner);
    }
    let mut score = NoteScore { n_ref: reference.len(), n_est: estimated.len(), ..Default::default() };
    for (j, o) in owner.iter().enumerate() {
        if let Some(i) = *o {
            score.matched += 1;
            score.onset_errors.push(estimated[j].0 - reference[i].0);
        }
    }
    score
}

struct Lcg(u64);
impl Lcg {
    fn unit(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

/// First seed of the 24 melodies `cargo xtask eval` scores (seeds used nowhere else).
pub const EVAL_FIRST_MELODY: u64 = 10_000;

/// Melody `i` of a set from seed `first` on, as `cargo xtask eval` sings it: seed `first + i`,
/// voices rotating male, female, child, rendered at `sample_rate`. Returns the voice, the audio
/// and the reference notes (onset seconds, MIDI).
pub fn sung_melody(first: u64, i: u64, sample_rate: f32) -> (VoiceType, Vec<f32>, Vec<(f32, f32)>) {
    let voice = [VoiceType::Male, VoiceType::Female, VoiceType::Child][(i % 3) as usize];
    let (singer, notes, total_s) = random_melody(first + i, voice);
    let audio = singer.render(&notes, sample_rate, total_s);
    (voice, audio, notes.iter().map(|n| (n.start_s, n.midi)).collect())
}

/// A random sung melody for `voice`: 8–14 notes in the voice's range, mostly stepwise, with
/// rests, staccato and legato, repeated notes re-sung with a consonant, detuning up to ±20
/// cents and varied levels. Returns the singer settings too (vibrato, breath, jitter).
pub fn random_melody(seed: u64, voice: VoiceType) -> (crate::singer::Singer, Vec<SungNote>, f32) {
    let mut r = Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(7));
    let (lo, hi) = match voice {
        VoiceType::Male => (40.0, 64.0),
        VoiceType::Female => (55.0, 79.0),
        VoiceType::Child => (60.0, 84.0),
    };
    let vowels = [Vowel::A, Vowel::E, Vowel::I, Vowel::O, Vowel::U, Vowel::Hum];
    let n = 8 + (r.unit() * 7.0) as usize;
    let mut pitch = r.range(lo + 4.0, hi - 4.0).round();
    let mut t = 0.3;
    let mut notes = Vec::new();
    let level = r.range(0.1, 0.6);
    for i in 0..n {
        if i > 0 {
            let step = [-5.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 7.0][(r.unit() * 10.0) as usize % 10];
            pitch = (pitch + step).clamp(lo, hi);
        }
        let dur = r.range(0.18, 0.8);
        let repeated = notes.last().is_some_and(|p: &SungNote| (p.midi.round() - pitch).abs() < 0.5);
        let gap = if repeated { r.range(0.06, 0.2) } else if r.unit() < 0.3 { r.range(0.1, 0.5) } else { r.range(0.0, 0.05) };
        notes.push(SungNote {
            start_s: t,
            dur_s: dur,
            midi: pitch + r.range(-0.2, 0.2),
            vowel: vowels[(r.unit() * 6.0) as usize % 6],
            level: level * r.range(0.6, 1.0),
            consonant: repeated || r.unit() < 0.4,
        });
        t += dur + gap.max(if repeated { 0.06 } else { 0.0 });
    }
    let singer = crate::singer::Singer {
        voice,
        vibrato_hz: r.range(4.5, 7.0),
        vibrato_cents: r.range(15.0, 60.0),
        breath: r.range(0.005, 0.04),
        jitter_cents: r.range(2.0, 8.0),
        seed,
        attack_s: r.range(0.005, 0.04),
    };
    (singer, notes, t + 0.5)
}

#[cfg(test)]
mod tests {
    use super::score_notes;

    #[test]
    fn matching_is_maximum_like_mir_eval() {
        // Reference notes 60 ms apart; the first estimate is nearest the second reference but
        // also in tolerance of the first. Greedy by distance pairs it with the second and leaves
        // the first reference without a partner; a maximum matching pairs both.
        let reference = [(1.00, 60.0), (1.06, 60.0)];
        let estimated = [(1.04, 60.0), (1.10, 60.0)];
        let s = score_notes(&reference, &estimated, 0.05, 0.5);
        assert_eq!(s.matched, 2);
        // Pitch and onset tolerances still hold.
        assert_eq!(score_notes(&[(1.0, 60.0)], &[(1.051, 60.0)], 0.05, 0.5).matched, 0);
        assert_eq!(score_notes(&[(1.0, 60.0)], &[(1.0, 60.6)], 0.05, 0.5).matched, 0);
        assert_eq!(score_notes(&[(1.0, 60.0)], &[(1.04, 60.4)], 0.05, 0.5).matched, 1);
    }
}
