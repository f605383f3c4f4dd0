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
