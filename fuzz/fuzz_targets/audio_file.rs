//! The command-line renderer's audio-file reader (`plugin/src/audio_file.rs`, compiled in here;
//! Symphonia: WAV, FLAC, MP3, Ogg Vorbis) on arbitrary bytes: an error naming the file or
//! well-formed audio, never a panic. The first byte picks the file-name extension given as the
//! format hint (the CLI hints with the input file's extension).
#![no_main]

#[allow(dead_code)]
#[path = "../../plugin/src/atomic_file.rs"]
mod atomic_file;
#[allow(dead_code)]
#[path = "../../plugin/src/audio_file.rs"]
mod audio_file;

use std::path::Path;

use audio_file::decode_audio_bytes;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 6] = ["in.wav", "in.flac", "in.mp3", "in.ogg", "in.txt", "in"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let name = Path::new(NAMES[pick as usize % NAMES.len()]);
    match decode_audio_bytes(name, bytes.to_vec()) {
        Ok(audio) => {
            assert!(audio.sample_rate > 0);
            assert!(!audio.channels.is_empty() && audio.frames() > 0);
            assert!(audio.channels.iter().all(|c| c.len() == audio.frames()));
        }
        Err(err) => {
            // Every error names the file.
            assert!(err.to_string().contains(name.to_str().unwrap()), "{err}");
        }
    }
});
