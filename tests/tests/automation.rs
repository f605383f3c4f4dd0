//! Issue 6's automation checks, in process: the real plugin (`HummingFace` through nice-plug's
//! `Plugin` trait, `hummingface_tests::inproc`) with every parameter set to a random value
//! before every block, the way a wrapper applies host automation (`ParamPtr` on the plugin's own
//! parameter objects), in host blocks of random size (1–1024 samples, so changes also land a few
//! samples apart, as sample-accurate automation splitting a block would make them), in real-time
//! and offline mode.
//!
//! - Silent input: the output stays below −90 dBFS however the parameters jump (no click on
//!   silence: no gain or mix step, no phantom note).
//! - Sung input: output finite and bounded (< 8: the piano at +12 dB output gain), notes still
//!   come out (offline), and parameter changes never allocate on the audio thread.

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use hummingface_tests::inproc::{all_params, set_normalized, InProcessHost};
use hummingface_tests::sung_melody;
use nice_plug::prelude::{ParamPtr, Params};
use std::sync::Arc;

#[global_allocator]
static ALLOC: AllocDisabler = AllocDisabler;

const SR: u32 = 48_000;
const MAX_BLOCK: usize = 1024;
/// −90 dBFS.
const SILENCE: f32 = 3.162_277_7e-5;

struct Lcg(u64);
impl Lcg {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    /// 0..1.
    fn unit(&mut self) -> f32 {
        self.next_u32() as f32 / (1u64 << 31) as f32
    }
    /// 1..=n.
    fn size(&mut self, n: usize) -> usize {
        1 + self.next_u32() as usize % n
    }
}

/// A random normalized value for a parameter: any value for continuous ones, a step for stepped.
fn random_value(rng: &mut Lcg, steps: Option<usize>) -> f32 {
    match steps {
        Some(n) if n > 0 => (rng.next_u32() as usize % (n + 1)) as f32 / n as f32,
        _ => rng.unit(),
    }
}

/// What one automated run saw.
struct Automated {
    out: Vec<f32>,
    /// Parameter values set (every parameter, every block).
    changes: usize,
    blocks: usize,
    notes_on: u64,
}

/// Runs `audio` (copied to both channels) through a fresh stereo instance, setting every
/// parameter at random before every block. Returns the left output channel.
fn automate(audio: &[f32], offline: bool, seed: u64) -> Automated {
    let mut host = InProcessHost::new(2, SR as f32, MAX_BLOCK as u32, offline);
    assert!(host.activate(), "activate");
    let params: Arc<dyn Params> = host.params();
    let list: Vec<(String, ParamPtr, Option<usize>)> = all_params(&params);
    assert!(list.len() >= 11, "every knob is a parameter: {:?}", list.iter().map(|p| &p.0).collect::<Vec<_>>());
    let mut rng = Lcg(seed);
    let mut values = vec![0.0f32; list.len()];
    let (mut l, mut r) = (vec![0.0f32; MAX_BLOCK], vec![0.0f32; MAX_BLOCK]);
    let mut out = Vec::with_capacity(audio.len());
    let (mut pos, mut changes, mut blocks) = (0, 0, 0);
    let violations = assert_no_alloc::violation_count();
    while pos < audio.len() {
        let n = rng.size(MAX_BLOCK).min(audio.len() - pos);
        for (v, p) in values.iter_mut().zip(&list) {
            *v = random_value(&mut rng, p.2);
        }
        // A wrapper applies automation on the audio thread: no allocation there either.
        assert_no_alloc(|| {
            for (v, p) in values.iter().zip(&list) {
                // SAFETY: `params` keeps the parameter objects alive.
                unsafe { set_normalized(&p.1, *v) };
            }
        });
        changes += list.len();
        l[..n].copy_from_slice(&audio[pos..pos + n]);
        r[..n].copy_from_slice(&audio[pos..pos + n]);
        host.process(&mut [&mut l[..n], &mut r[..n]]);
        for (i, (a, b)) in l[..n].iter().zip(&r[..n]).enumerate() {
            assert!(a.is_finite() && b.is_finite(), "non-finite output at sample {}", pos + i);
        }
        out.extend_from_slice(&l[..n]);
        pos += n;
        blocks += 1;
    }
    assert_eq!(assert_no_alloc::violation_count(), violations, "allocation on the audio thread");
    let notes_on = host.notes().0;
    host.deactivate();
    Automated { out, changes, blocks, notes_on }
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

#[test]
fn random_automation_on_silence_stays_silent() {
    let silence = vec![0.0f32; 4 * SR as usize];
    for (offline, seed) in [(false, 1), (true, 2), (false, 3)] {
        let run = automate(&silence, offline, seed);
        let p = peak(&run.out);
        eprintln!(
            "automation on silence ({}): {} blocks, {} parameter changes, peak {:.3e} ({:.1} dBFS), {} notes",
            if offline { "offline" } else { "real time" },
            run.blocks,
            run.changes,
            p,
            20.0 * p.max(1e-30).log10(),
            run.notes_on
        );
        assert!(p < SILENCE, "silent input, jumping parameters: output peak {p:.3e} (above −90 dBFS)");
        assert_eq!(run.notes_on, 0, "silent input produced notes");
    }
}

#[test]
fn random_automation_on_singing_is_finite_and_bounded() {
    let melody = sung_melody(&[(57.0, 0.2, 0.8), (62.0, 1.2, 0.6), (64.0, 2.0, 1.0), (60.0, 3.2, 0.6)], 4.0, SR);
    for (offline, seed) in [(false, 11), (true, 12)] {
        let run = automate(&melody, offline, seed);
        let p = peak(&run.out);
        eprintln!(
            "automation on singing ({}): {} blocks, {} parameter changes, peak {p:.3}, {} note-ons",
            if offline { "offline" } else { "real time" },
            run.blocks,
            run.changes,
            run.notes_on
        );
        assert!(p < 8.0, "output peak {p} (bound: the piano at +12 dB)");
        assert!(p > 1e-3, "the plugin went silent under automation");
        // Offline waits for every frame; unpaced real time runs far ahead of its worker, so its
        // frames (and their notes) come late and are faded, which the starvation test covers.
        if offline {
            assert!(run.notes_on > 0, "no notes came out under automation");
        }
    }
}

/// A note event of [`InProcessHost::note_log`]: (output sample, key, on).
type NoteAt = (u64, u8, bool);

/// Runs a stereo sung melody (left as sung, right at 0.3) through a fresh offline instance in
/// blocks of 256 (split where the bypass changes, as a wrapper splits a block at a parameter
/// event), bypassed over `[on, off)` samples when given. Returns the output channels, the note
/// log and the latency.
fn bypassed_run(left: &[f32], bypass: Option<(usize, usize)>) -> (Vec<Vec<f32>>, Vec<NoteAt>, usize) {
    let mut host = InProcessHost::new(2, SR as f32, 256, true);
    assert!(host.activate());
    let params = host.params();
    let bypass_param = all_params(&params)
        .into_iter()
        .find(|(id, _, _)| id == "bypass")
        .expect("the plugin has a bypass parameter")
        .1;
    // SAFETY: `params` is alive for the whole run.
    let flag = unsafe { bypass_param.flags() };
    assert!(flag.contains(nice_plug::prelude::ParamFlags::BYPASS), "the bypass parameter is not marked as the host's bypass");
    let mut out = vec![left.to_vec(), left.iter().map(|x| x * 0.3).collect::<Vec<f32>>()];
    let edges: Vec<usize> = bypass.map_or(vec![], |(a, b)| vec![a, b]);
    let mut pos = 0;
    while pos < left.len() {
        let mut end = (pos + 256).min(left.len());
        if let Some(&e) = edges.iter().find(|&&e| e > pos && e < end) {
            end = e;
        }
        if let Some((a, b)) = bypass {
            // SAFETY: as above.
            unsafe { set_normalized(&bypass_param, if pos >= a && pos < b { 1.0 } else { 0.0 }) };
        }
        let (l, r) = out.split_at_mut(1);
        host.process(&mut [&mut l[0][pos..end], &mut r[0][pos..end]]);
        pos = end;
    }
    let latency = host.latency() as usize;
    (out, host.note_log().to_vec(), latency)
}

/// The host's bypass: from its sample on the output crossfades in 10 ms to the input delayed by
/// the latency, then is that input bit for bit on both channels; the note sounding on the MIDI
/// output ends on that sample and no note starts while bypassed; switched off, the piano fades
/// back in 10 ms and from then on the output and the notes are exactly what an instance never
/// bypassed gives (the listener kept listening). No allocation on the way.
#[test]
fn bypass_passes_the_delayed_input_and_ends_the_notes() {
    let melody = sung_melody(
        &[(57.0, 0.2, 0.8), (62.0, 1.2, 0.6), (64.0, 2.0, 1.0), (60.0, 3.2, 0.6), (65.0, 4.0, 0.7)],
        5.0,
        SR,
    );
    let violations = assert_no_alloc::violation_count();
    let (reference, ref_notes, latency) = bypassed_run(&melody, None);
    // Bypassed in the middle of the third note (sounding in the reference), back in the fourth.
    let (on, off) = ((2.5 * SR as f32) as usize, (3.5 * SR as f32) as usize);
    let (out, notes, lat) = bypassed_run(&melody, Some((on, off)));
    assert_eq!(lat, latency);
    assert_eq!(assert_no_alloc::violation_count(), violations, "process() allocated");
    let fade = (0.01 * SR as f32) as usize;
    let dry = |ch: usize, i: usize| if i < latency { 0.0 } else { melody[i - latency] * if ch == 0 { 1.0 } else { 0.3 } };

    for ch in 0..2 {
        assert_eq!(out[ch][..on], reference[ch][..on], "channel {ch} differs before the bypass");
        for (i, y) in out[ch].iter().enumerate().take(off).skip(on + fade) {
            assert_eq!(y.to_bits(), dry(ch, i).to_bits(), "channel {ch}, sample {i}: not the delayed input");
        }
        for k in 0..fade {
            let b = (k + 1) as f32 / fade as f32;
            let want = reference[ch][on + k] * (1.0 - b) + dry(ch, on + k) * b;
            assert!((out[ch][on + k] - want).abs() < 1e-5, "channel {ch}: fade-out sample {k}: {} vs {want}", out[ch][on + k]);
            let b = 1.0 - (k + 1) as f32 / fade as f32;
            let want = reference[ch][off + k] * (1.0 - b) + dry(ch, off + k) * b;
            assert!((out[ch][off + k] - want).abs() < 1e-5, "channel {ch}: fade-in sample {k}: {} vs {want}", out[ch][off + k]);
        }
        assert_eq!(out[ch][off + fade..], reference[ch][off + fade..], "channel {ch} differs after the bypass");
        // The bypass really removed a piano: the reference is not the dry signal there.
        let piano: f32 = (on + fade..off).map(|i| (reference[ch][i] - dry(ch, i)).abs()).fold(0.0, f32::max);
        assert!(piano > 0.05, "channel {ch}: the reference's piano is missing ({piano})");
    }

    // MIDI: the reference's note sounding at `on` ends there; nothing starts in [on, off).
    let sounding_at = |log: &[NoteAt], t: u64| {
        let mut keys = [false; 128];
        for &(_, key, is_on) in log.iter().filter(|e| e.0 < t) {
            keys[key as usize] = is_on;
        }
        (0..128u8).filter(|&k| keys[k as usize]).collect::<Vec<u8>>()
    };
    let held = sounding_at(&ref_notes, on as u64);
    assert_eq!(held.len(), 1, "the reference holds one note when the bypass comes: {held:?} ({ref_notes:?})");
    let before: Vec<_> = ref_notes.iter().filter(|e| e.0 < on as u64).copied().collect();
    assert_eq!(notes[..before.len()], before[..], "notes before the bypass differ");
    assert_eq!(notes[before.len()], (on as u64, held[0], false), "the held note does not end at the bypass");
    let during: Vec<_> = notes.iter().filter(|e| e.0 >= on as u64 && e.0 < off as u64).collect();
    assert_eq!(during.len(), 1, "events while bypassed besides the held note's end: {during:?}");
    assert!(sounding_at(&notes, off as u64).is_empty());
    // After it, the reference's note-ons (a note-off whose note-on fell in the bypass is not sent).
    let ref_after: Vec<_> = ref_notes.iter().filter(|e| e.0 >= off as u64 && e.2).collect();
    let after: Vec<_> = notes.iter().filter(|e| e.0 >= off as u64 && e.2).collect();
    assert!(!after.is_empty(), "no note after the bypass");
    assert_eq!(after, ref_after, "note-ons after the bypass differ");
    let offs_after = notes.iter().filter(|e| e.0 >= off as u64 && !e.2).count();
    assert_eq!(offs_after, after.len(), "every note started after the bypass ends once, and nothing else");
    eprintln!(
        "bypass: latency {latency} samples, fade {fade} samples, {} reference events, {} with the bypass",
        ref_notes.len(),
        notes.len()
    );
}
