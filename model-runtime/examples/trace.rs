//! Print the listener's per-frame view of a sung note: `cargo run --release --example trace -p
//! hummingface-runtime -- MIDI [VOICE]` (a debugging aid for the tracker's thresholds).

use hummingface_runtime::listener::ListenerV0;
use hummingface_runtime::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let midi: f32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(40.0);
    let voice = match args.get(2).map(String::as_str) {
        Some("female") => VoiceType::Female,
        Some("child") => VoiceType::Child,
        _ => VoiceType::Male,
    };
    let sr = 48000.0;
    let mut audio = Singer { voice, ..Singer::default() }.render(
        &[SungNote { start_s: 0.2, dur_s: 0.5, midi, vowel: Vowel::A, level: 0.4, consonant: false }],
        sr,
        0.9,
    );
    if args.get(3).map(String::as_str) == Some("noise") {
        // White noise burst 0.4..0.5 s and a plosive-like burst at 0.6 s.
        let mut x = 12345u32;
        for (i, s) in audio.iter_mut().enumerate() {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            let n = x as f32 / u32::MAX as f32 - 0.5;
            if (19200..24000).contains(&i) { *s = 0.3 * n; }
        }
    }
    let t = Timing::new(sr, 512, ProcessMode::Offline);
    let model = Model::embedded();
    let mut listener = ListenerV0::new(&model, &t, &candle_core::Device::Cpu).unwrap();
    let (mags, frames) = hummingface_runtime::bench::analysis_frames(&audio, &t);
    let bins = t.analysis_bins;
    let mut sal = Vec::new();
    for k in 0..frames {
        let end = (k + 1) * t.hop;
        let f = listener.step(&mags[k * bins..(k + 1) * bins], &mut sal).unwrap();
        let hop = &audio[end - t.hop..end];
        let db = 10.0 * (hop.iter().map(|x| x * x).sum::<f32>() / t.hop as f32 + 1e-12).log10();
        let t_ms = end as f32 / sr * 1000.0;
        if (150.0..450.0).contains(&t_ms) || (650.0..800.0).contains(&t_ms) {
            println!("{k:4} {t_ms:7.1} ms  pitch {:6.2}  per {:5.3}  flux {:5.3}  hop {:6.1} dB", f.pitch_midi, f.periodicity, f.flux, db);
        }
    }
}
