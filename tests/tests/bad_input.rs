//! Issue 6, hostile input through the real plugin (`HummingFace` through nice-plug's `Plugin`
//! trait, in process, offline so that every render is reproducible, `process` under
//! `assert_no_alloc`): NaN and ±Inf bursts, 1e30, denormals, DC offset, a full-scale square
//! wave, hard clipping, and an hour of silence. Output finite and bounded every time, and after a
//! bad burst normal again within 100 ms: from 100 ms after the burst (plus the latency) the
//! piano plays the sung note again, and once that note has rung out the output is the same as a
//! render of the same input without the burst (all but the
//! pianist's noise, 47 dB under the signal).
//!
//! The bursts are checked with both settings of the `listener` parameter (classic and the
//! trained network, whose note decoder remembers the lead voice's level).
//!
//! The engine-level burst check (`model-runtime/tests/engine.rs`) covers the engine alone; this
//! adds the plugin's mixer, the dry path and the other signals.

use assert_no_alloc::AllocDisabler;
use hummingface::params::ListenerParam;
use nice_plug::prelude::Enum;
use hummingface_tests::inproc::{all_params, set_normalized, InProcessHost};
use hummingface_tests::pitch::dominant_fundamental;
use hummingface_tests::{rms, sung_melody, sung_note};

#[global_allocator]
static ALLOC: AllocDisabler = AllocDisabler;

const SR: u32 = 48_000;

/// A named burst: its value at each sample of the burst.
type Burst = (&'static str, fn(usize) -> f32);

const BLOCK: usize = 512;

/// A3 held 0.2–2.2 s, D4 2.8–3.6 s, in 4 s.
fn two_notes() -> Vec<f32> {
    sung_melody(&[(57.0, 0.2, 2.0), (62.0, 2.8, 0.8)], 4.0, SR)
}

/// What one render gave: the left channel (the right one is checked to be finite too), the
/// note events (sample, key, on) and the latency.
struct Render {
    out: Vec<f32>,
    notes: Vec<(u64, u8, bool)>,
    latency: usize,
}

/// Renders `input` (mono, on both channels) through a fresh offline stereo instance with the
/// given mix (1 = piano only, the default) in blocks of [`BLOCK`].
fn render(input: &[f32], mix: f32) -> Render {
    render_with(input, mix, ListenerParam::Classic)
}

/// [`render`] with the given value of the plugin's `listener` parameter (set before
/// activation, where it is read).
fn render_with(input: &[f32], mix: f32, listener: ListenerParam) -> Render {
    let mut host = InProcessHost::new(2, SR as f32, BLOCK as u32, true);
    let params = host.params();
    for (id, p, _) in all_params(&params) {
        // SAFETY: `params` is alive.
        match id.as_str() {
            "mix" => unsafe { set_normalized(&p, mix) },
            "listener" => unsafe { set_normalized(&p, listener.to_index() as f32 / (ListenerParam::variants().len() - 1) as f32) },
            _ => {}
        }
    }
    assert!(host.activate());
    let violations = assert_no_alloc::violation_count();
    let mut out = Vec::with_capacity(input.len());
    let (mut l, mut r) = (vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]);
    for chunk in input.chunks(BLOCK) {
        let n = chunk.len();
        l[..n].copy_from_slice(chunk);
        r[..n].copy_from_slice(chunk);
        host.process(&mut [&mut l[..n], &mut r[..n]]);
        assert!(r[..n].iter().all(|x| x.is_finite()), "non-finite output (right)");
        out.extend_from_slice(&l[..n]);
    }
    assert_eq!(assert_no_alloc::violation_count(), violations, "allocation in process");
    let render = Render { out, notes: host.note_log().to_vec(), latency: host.latency() as usize };
    host.deactivate();
    render
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn finite_and_bounded(x: &[f32], bound: f32, what: &str) {
    for (i, &v) in x.iter().enumerate() {
        assert!(v.is_finite(), "{what}: non-finite output at sample {i}");
        assert!(v.abs() < bound, "{what}: output {v} at sample {i} (bound {bound})");
    }
}

fn s(t: f64) -> usize {
    (t * SR as f64) as usize
}

#[test]
fn nan_inf_and_huge_bursts_recover_within_100_ms() {
    let clean = two_notes();
    let classic = render(&clean, 1.0);
    // Both listeners: the trained one's note decoder remembers the lead voice's level (a burst
    // of 1e30 once gated every later note), so it is checked here as well.
    let network = render_with(&clean, 1.0, ListenerParam::Network);
    let on = |r: &Render| r.notes.iter().filter(|n| n.2).map(|n| (n.0, n.1)).collect::<Vec<_>>();
    eprintln!("note-ons: classic {:?}, network {:?}", on(&classic), on(&network));
    assert_eq!(on(&network).iter().map(|n| n.1).collect::<Vec<_>>(), vec![57, 62], "the network listener plays A3 then D4");
    assert_ne!(on(&classic), on(&network), "the listener parameter changed nothing");
    for (listener, reference) in [(ListenerParam::Classic, classic), (ListenerParam::Network, network)] {
        bursts_recover(&clean, &reference, listener);
    }
}

/// The bursts of [`nan_inf_and_huge_bursts_recover_within_100_ms`] with one listener.
fn bursts_recover(clean: &[f32], reference: &Render, listener: ListenerParam) {
    let render = |input: &[f32], mix: f32| render_with(input, mix, listener);
    finite_and_bounded(&reference.out, 4.0, "reference");
    let lat = reference.latency;
    // The burst: 10 ms at 1.0 s, inside the held A3.
    let (b0, b1) = (s(1.0), s(1.01));
    let bursts: [Burst; 6] = [
        ("NaN", |_| f32::NAN),
        ("+Inf", |_| f32::INFINITY),
        ("-Inf", |_| f32::NEG_INFINITY),
        ("alternating NaN/±Inf", |i| [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][i % 3]),
        ("1e30", |i| if i % 2 == 0 { 1e30 } else { -1e30 }),
        ("f32::MAX", |_| f32::MAX),
    ];
    for (what, value) in bursts {
        let what = format!("{listener:?}, {what}");
        let what = what.as_str();
        let mut input = clean.to_vec();
        for (i, x) in input[b0..b1].iter_mut().enumerate() {
            *x = value(i);
        }
        let got = render(&input, 1.0);
        finite_and_bounded(&got.out, 4.0, what);
        // 100 ms after the burst (in output time: + latency), for 200 ms: the piano plays A3
        // again, at a level like the reference's.
        let (w0, w1) = (b1 + s(0.1) + lat, b1 + s(0.3) + lat);
        let p = dominant_fundamental(&got.out[w0..w1], SR).unwrap_or_else(|| panic!("{what}: silent 100 ms after the burst"));
        let (level, ref_level) = (rms(&got.out[w0..w1]), rms(&reference.out[w0..w1]));
        // Normal again: once the held A3 has rung out (released at 2.2 s; the recorded damper
        // runs 1 s), the piano plays what the clean render plays: the same D4 on the same
        // sample, the same partials; what differs is the pianist's noise (its generator ran a
        // different number of frames because of the extra A3 attack), so the difference is a
        // small fraction of the signal. (Before A3 has rung out its tail differs too: the burst
        // re-struck it, and a string struck later is louder when the damper falls.)
        let max_diff = |a: usize, b: usize| got.out[a..b].iter().zip(&reference.out[a..b]).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        let after = s(3.3) + lat;
        let diff = max_diff(after, got.out.len());
        let diff_rms: f32 = {
            let d: Vec<f32> = got.out[after..].iter().zip(&reference.out[after..]).map(|(x, y)| x - y).collect();
            rms(&d)
        };
        let rel = diff_rms / rms(&reference.out[after..]).max(1e-9);
        let attack = max_diff(s(2.75) + lat, s(2.9) + lat);
        let d4 = |r: &Render| r.notes.iter().find(|n| n.1 == 62 && n.2).map(|n| n.0);
        // The first 100 ms after the burst, and how far from the reference the output is there.
        let early = got.out[b1 + lat..b1 + lat + s(0.1)].iter().zip(&reference.out[b1 + lat..]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let ons: Vec<_> = got.notes.iter().filter(|n| n.2).map(|n| (n.1, n.0 as f64 / SR as f64)).collect();
        eprintln!(
            "{what}: peak {:.3}; 100–300 ms after: midi {:.2}, rms {level:.4} (reference {ref_level:.4}); first 100 ms differ by ≤ {early:.3}; once A3 has rung out ≤ {diff:.1e}, RMS {:.1} dB under the signal (D4 attack ≤ {attack:.3}); note-ons {ons:?}",
            peak(&got.out),
            p.midi,
            20.0 * rel.max(1e-12).log10()
        );
        assert!((p.midi - 57.0).abs() < 0.5, "{what}: plays midi {:.2} after the burst, not A3", p.midi);
        assert!(level > 0.3 * ref_level, "{what}: level {level} after the burst, reference {ref_level}");
        assert!(rel < 0.05, "{what}: once A3 has rung out the output differs from the clean render by {diff} (RMS ratio {rel})");
        assert_eq!(d4(&got), d4(reference), "{what}: D4 starts elsewhere");
        assert!(got.notes.iter().filter(|n| n.2).all(|n| n.1 == 57 || n.1 == 62), "{what}: wrong notes {ons:?}");
    }

    // With the dry vocal mixed in (50 %), the bad samples never reach the output: the mixer
    // replaces non-finite input by silence (huge finite input passes the dry path as it is).
    for (what, v) in [("NaN", f32::NAN), ("+Inf", f32::INFINITY), ("-Inf", f32::NEG_INFINITY)] {
        let mut input = clean.to_vec();
        input[b0..b1].fill(v);
        let got = render(&input, 0.5);
        finite_and_bounded(&got.out, 4.0, &format!("{what}, mix 50 %"));
    }
}

#[test]
fn denormals_dc_square_wave_and_clipping_are_handled() {
    let clean = two_notes();
    let reference = render(&clean, 1.0);
    let ref_keys: Vec<u8> = reference.notes.iter().filter(|n| n.2).map(|n| n.1).collect();
    assert_eq!(ref_keys, vec![57, 62], "the clean render plays A3 then D4");

    // Denormals: a whole input of subnormal noise is silence; subnormals in the rests change
    // nothing.
    let sub: Vec<f32> = (0..s(2.0)).map(|i| f32::from_bits(1 + (i as u32 * 2654435761) % 0x007F_FFFF) * if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    assert!(sub.iter().all(|x| x.is_subnormal()));
    let got = render(&sub, 1.0);
    eprintln!("subnormal noise: peak {:.3e}, {} note events", peak(&got.out), got.notes.len());
    finite_and_bounded(&got.out, 1e-6, "subnormal noise");
    assert!(got.notes.is_empty(), "subnormal noise made notes");
    let mut with_sub = clean.clone();
    for (x, d) in with_sub.iter_mut().zip(sub.iter().cycle()) {
        if *x == 0.0 {
            *x = *d;
        }
    }
    let got = render(&with_sub, 1.0);
    let diff = got.out.iter().zip(&reference.out).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    eprintln!("subnormals in the rests: differs from the clean render by {diff:.2e}");
    assert!(diff <= 1e-6, "subnormals in the rests changed the output by {diff}");

    // DC: a constant input has no pitch (no note, no sound); singing on a DC offset plays the
    // same notes.
    for dc in [0.9f32, -1.0] {
        let got = render(&vec![dc; s(2.0)], 1.0);
        eprintln!("DC {dc}: peak {:.3e}, {} note events", peak(&got.out), got.notes.len());
        finite_and_bounded(&got.out, 1e-3, &format!("DC {dc}"));
        assert!(got.notes.is_empty(), "DC {dc} made notes");
    }
    let offset: Vec<f32> = clean.iter().map(|x| x + 0.4).collect();
    let got = render(&offset, 1.0);
    let keys: Vec<u8> = got.notes.iter().filter(|n| n.2).map(|n| n.1).collect();
    eprintln!("singing on +0.4 DC: peak {:.3}, note-ons {keys:?}", peak(&got.out));
    finite_and_bounded(&got.out, 4.0, "singing on DC");
    assert_eq!(keys, ref_keys, "singing on a DC offset plays other notes");

    // A full-scale square wave at 220 Hz (A3): finite, bounded, and if anything is played it is
    // A3.
    let square: Vec<f32> = (0..s(2.0)).map(|i| if (i * 220 * 2 / SR as usize).is_multiple_of(2) { 1.0 } else { -1.0 }).collect();
    let got = render(&square, 1.0);
    let keys: Vec<u8> = got.notes.iter().filter(|n| n.2).map(|n| n.1).collect();
    eprintln!("full-scale square 220 Hz: peak {:.3}, note-ons {keys:?}", peak(&got.out));
    finite_and_bounded(&got.out, 4.0, "square wave");
    assert!(keys.iter().all(|&k| k == 57), "a 220 Hz square wave played {keys:?}");

    // Hard clipping: the singing 20× too loud, clipped at ±1: the same notes, bounded output.
    let clipped: Vec<f32> = clean.iter().map(|x| (x * 20.0).clamp(-1.0, 1.0)).collect();
    assert!(clipped.iter().filter(|x| x.abs() == 1.0).count() > s(1.0), "the input is really clipped");
    let got = render(&clipped, 1.0);
    let keys: Vec<u8> = got.notes.iter().filter(|n| n.2).map(|n| n.1).collect();
    eprintln!("clipped singing: peak {:.3}, note-ons {keys:?}", peak(&got.out));
    finite_and_bounded(&got.out, 4.0, "clipped singing");
    assert_eq!(keys, ref_keys, "clipped singing plays other notes");
}

#[test]
fn an_hour_of_silence_stays_silent_and_the_piano_still_plays_after() {
    let mut host = InProcessHost::new(2, SR as f32, BLOCK as u32, true);
    assert!(host.activate());
    let violations = assert_no_alloc::violation_count();
    let (mut l, mut r) = (vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]);
    let blocks = 3600 * SR as usize / BLOCK;
    let mut loudest = 0.0f32;
    for _ in 0..blocks {
        l.fill(0.0);
        r.fill(0.0);
        host.process(&mut [&mut l, &mut r]);
        loudest = loudest.max(peak(&l)).max(peak(&r));
    }
    assert_eq!(assert_no_alloc::violation_count(), violations, "allocation in process");
    eprintln!("one hour of silence ({blocks} blocks of {BLOCK}): output peak {loudest:.3e}, {} note events", host.note_log().len());
    assert_eq!(loudest, 0.0, "an hour of silence made sound");
    assert!(host.note_log().is_empty(), "an hour of silence made notes");
    // Then a sung A3 plays A3, on time (within 50 ms of the sung onset + latency).
    let lat = host.latency() as usize;
    let note = sung_note(57.0, 0.2, 1.0, 1.5, SR);
    let mut out = Vec::new();
    for chunk in note.chunks(BLOCK) {
        let n = chunk.len();
        l[..n].copy_from_slice(chunk);
        r[..n].copy_from_slice(chunk);
        host.process(&mut [&mut l[..n], &mut r[..n]]);
        out.extend_from_slice(&l[..n]);
    }
    finite_and_bounded(&out, 4.0, "after an hour of silence");
    let p = dominant_fundamental(&out, SR).expect("a pitch after the hour");
    assert!((p.midi - 57.0).abs() < 0.5, "after an hour of silence the piano plays midi {:.2}", p.midi);
    let start = (3600 * SR as usize / BLOCK * BLOCK) as u64;
    let on = host.note_log().iter().find(|n| n.2).expect("a note-on after the hour");
    let t = (on.0 - start) as f64 / SR as f64;
    eprintln!("after the hour: note {} at {t:.3} s (sung at 0.200 s, latency {:.3} s)", on.1, lat as f64 / SR as f64);
    assert_eq!(on.1, 57);
    assert!((t - 0.2 - lat as f64 / SR as f64).abs() < 0.05, "note-on at {t:.3} s after the hour");
    host.deactivate();
}
