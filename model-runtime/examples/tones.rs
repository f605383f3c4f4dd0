//! Which note each listener plays for one held tone at every semitone E2–C6: a pure sine
//! (−10 dBFS), and the engine singer's closed-mouth hum and "oo" (male below G3, female below
//! C5, child above). Prints, per kind of tone, how many of the 45 were not exactly that one note.
//!
//! `cargo run --release -p hummingface-runtime --example tones -- [MODEL.safetensors|-] [v0|trained]`
//! (`-`: the built-in model; default listener: trained).

use std::sync::Arc;

use hummingface_runtime::generator::ListenerKind;
use hummingface_runtime::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = match args.get(1).map(String::as_str) {
        Some(p) if p != "-" => Arc::new(Model::from_file(std::path::Path::new(p)).unwrap_or_else(|e| panic!("{p}: {e}"))),
        _ => Model::embedded(),
    };
    let kind = if args.get(2).map(String::as_str) == Some("v0") { ListenerKind::V0 } else { ListenerKind::Trained };
    let model = model.listening_with(kind);
    println!("{} listener, model {}", if model.listener() == ListenerKind::V0 { "v0" } else { "trained" }, model.name());
    let sr = 48000.0f32;
    for tone in ["sine", "hum", "oo"] {
        let mut wrong = Vec::new();
        for midi in 40..=84u8 {
            let audio: Vec<f32> = if tone == "sine" {
                let hz = 440.0 * 2f32.powf((midi as f32 - 69.0) / 12.0);
                (0..(1.3 * sr) as usize)
                    .map(|i| {
                        let t = i as f32 / sr;
                        if (0.2..1.0).contains(&t) { 0.3 * (std::f32::consts::TAU * hz * t).sin() } else { 0.0 }
                    })
                    .collect()
            } else {
                let voice = if midi < 55 { VoiceType::Male } else if midi < 72 { VoiceType::Female } else { VoiceType::Child };
                let vowel = if tone == "hum" { Vowel::Hum } else { Vowel::U };
                Singer { voice, vibrato_cents: 20.0, ..Singer::default() }
                    .render(&[SungNote { start_s: 0.2, dur_s: 0.8, midi: midi as f32, vowel, level: 0.4, consonant: false }], sr, 1.3)
            };
            let res = render_offline(&[audio], sr, &RenderOptions::default(), model.clone(), &mut |_| {}).expect("render");
            let got: Vec<u8> = res.notes.iter().map(|n| n.note).collect();
            if got != [midi] {
                wrong.push(format!("{midi}→{got:?}"));
            }
        }
        println!("{tone}: {} of 45 wrong  {}", wrong.len(), wrong.join(" "));
    }
}
