//! Issue 6, the command-line renderer and its files, beyond `cli_errors.rs`: a one-sample file,
//! a WAV under another extension, unsupported codecs and containers, what happens to an existing
//! output when a render fails, and an hour-long file rendered whole, with the output only ever
//! seen complete (the writes are atomic: temporary file, then rename).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hummingface_tests::{assert_no_temporary_files, read_wav, run_with_timeout, scratch_dir, sung_note, write_wav, Artifacts, Finished};

fn cli(a: &Artifacts, args: &[&str], timeout: Duration) -> Finished {
    run_with_timeout(Command::new(&a.cli).arg("render").args(args), timeout, "hummingface render").unwrap()
}

/// A RIFF/WAVE file with a `fmt ` chunk of `format` and a `data` chunk.
fn riff_wav(format: u16, channels: u16, rate: u32, bits: u16, block_align: u16, extra: &[u8], data: &[u8]) -> Vec<u8> {
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&format.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * block_align as u32).to_le_bytes());
    fmt.extend_from_slice(&block_align.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    fmt.extend_from_slice(extra);
    let mut body = b"WAVE".to_vec();
    body.extend_from_slice(b"fmt ");
    body.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    body.extend_from_slice(&fmt);
    body.extend_from_slice(b"data");
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn one_error_line(res: &Finished, what: &str) -> String {
    assert!(!res.status.success(), "{what}: exited 0");
    assert!(!res.stderr.contains("panicked"), "{what}: panic:\n{}", res.stderr);
    let lines: Vec<&str> = res.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: stderr should be one line:\n{}", res.stderr);
    assert!(lines[0].starts_with("error: "), "{what}: {:?}", lines[0]);
    lines[0].to_string()
}

#[test]
fn cli_one_sample_other_extensions_unsupported_formats_and_failed_overwrites() {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = scratch_dir("cli-files");
    let sr = 48_000;

    // One sample: a valid file; the render is one sample long, finite, no notes.
    let one = dir.join("one-sample.wav");
    write_wav(&one, &[vec![0.25]], sr).unwrap();
    let out = dir.join("one-out.wav");
    let res = cli(&a, &[one.to_str().unwrap(), "-o", out.to_str().unwrap(), "--json"], Duration::from_secs(60));
    assert!(res.status.success(), "one-sample file: {}", res.stderr);
    let audio = read_wav(&out).unwrap();
    assert_eq!((audio.len(), audio.channels.len(), audio.sample_rate), (1, 1, sr));
    assert!(audio.channels[0][0].is_finite());

    // A WAV named .mp3, .flac, .ogg, .txt or nothing is recognised by its content and renders
    // exactly like the same file named .wav.
    let vocal = sung_note(57.0, 0.1, 0.6, 0.8, sr);
    let wav = dir.join("vocal.wav");
    write_wav(&wav, &[vocal], sr).unwrap();
    let reference_out = dir.join("vocal-out.wav");
    let res = cli(&a, &[wav.to_str().unwrap(), "-o", reference_out.to_str().unwrap()], Duration::from_secs(60));
    assert!(res.status.success(), "{}", res.stderr);
    let reference = read_wav(&reference_out).unwrap();
    for name in ["vocal.mp3", "vocal.flac", "vocal.ogg", "vocal.txt", "vocal"] {
        let renamed = dir.join(name);
        std::fs::copy(&wav, &renamed).unwrap();
        let out = dir.join(format!("out-{name}.wav"));
        let res = cli(&a, &[renamed.to_str().unwrap(), "-o", out.to_str().unwrap()], Duration::from_secs(60));
        assert!(res.status.success(), "a WAV named {name}: {}", res.stderr);
        assert_eq!(read_wav(&out).unwrap().channels, reference.channels, "a WAV named {name} renders differently");
    }

    // Unsupported: codecs this build does not decode inside a WAV, other containers.
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        ("MP3 inside a WAV (format 0x55)", dir.join("mp3-in.wav"), "not a supported audio file"),
        ("GSM 6.10 WAV (format 0x31)", dir.join("gsm.wav"), "not a supported audio file"),
        ("PNG named .wav", dir.join("picture.wav"), "not a supported audio file"),
        ("AIFF", dir.join("vocal.aiff"), "not a supported audio file"),
        ("MIDI file", dir.join("song.mid"), "not a supported audio file"),
        // Found by `cargo fuzz`: a PCM `fmt ` chunk that overflows the decoder's block-align
        // product (see `plugin/src/audio_file.rs`).
        ("fuzz find: RIFF fmt overflow", dir.join("fuzz-find.wav"), "not a supported audio file"),
    ];
    std::fs::write(&cases[0].1, riff_wav(0x55, 1, sr, 0, 1, &[], &[0u8; 1024])).unwrap();
    // cbSize 2, 320 samples per 65-byte block. (IMA and MS ADPCM WAVs decode: Symphonia reads them.)
    std::fs::write(&cases[1].1, riff_wav(0x31, 1, 8000, 0, 65, &[2, 0, 0x40, 0x01], &[0u8; 650])).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[0u8; 200]);
    std::fs::write(&cases[2].1, png).unwrap();
    std::fs::write(
        &cases[3].1,
        b"FORM\x00\x00\x00\x2eAIFFCOMM\x00\x00\x00\x12\x00\x01\x00\x00\x00\x10\x00\x10\x40\x0e\xbb\x80\x00\x00\x00\x00\x00\x00SSND\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00",
    )
    .unwrap();
    let fuzz_find = std::fs::read(hummingface_tests::workspace_root().join("tests/data/fuzz-audio-riff-fmt-overflow.bin")).unwrap();
    std::fs::write(&cases[5].1, &fuzz_find[1..]).unwrap();
    std::fs::write(&cases[4].1, b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00").unwrap();
    for (what, path, want) in &cases {
        let out = dir.join("unsupported-out.wav");
        let res = cli(&a, &[path.to_str().unwrap(), "-o", out.to_str().unwrap()], Duration::from_secs(60));
        let line = one_error_line(&res, what);
        eprintln!("{what}: {line}");
        assert!(line.contains(want) && line.contains(path.to_str().unwrap()), "{what}: {line}");
        assert!(!out.exists(), "{what}: output written");
        assert_no_temporary_files(&dir, what);
    }

    // A failed render leaves an existing output as it was; a good one replaces it whole.
    let existing = dir.join("existing.wav");
    std::fs::write(&existing, b"the previous take").unwrap();
    for (what, args) in [
        ("unsupported input", vec![cases[2].1.to_str().unwrap(), "-o", existing.to_str().unwrap()]),
        ("bad option", vec![wav.to_str().unwrap(), "-o", existing.to_str().unwrap(), "--mix", "2"]),
        ("MIDI into a missing folder", vec![wav.to_str().unwrap(), "-o", existing.to_str().unwrap(), "--midi", "/nonexistent/dir/x.mid"]),
    ] {
        let res = cli(&a, &args, Duration::from_secs(60));
        let line = one_error_line(&res, what);
        eprintln!("{what}: {line}");
        assert_eq!(std::fs::read(&existing).unwrap(), b"the previous take", "{what}: the existing output was touched");
        assert_no_temporary_files(&dir, what);
    }
    let res = cli(&a, &[wav.to_str().unwrap(), "-o", existing.to_str().unwrap()], Duration::from_secs(60));
    assert!(res.status.success(), "{}", res.stderr);
    assert_eq!(read_wav(&existing).unwrap().channels, reference.channels);
    assert_no_temporary_files(&dir, "good render over an existing file");
}

/// Where the sung tones of the hour-long file are: (onset s, MIDI note), 1.5 s each, one a
/// minute, the rest silence.
fn hour_tones() -> Vec<(f64, u8)> {
    let notes = [57u8, 60, 64, 55, 62];
    (0..60).map(|k| (20.0 + 60.0 * k as f64, notes[k % notes.len()])).collect()
}

#[test]
fn cli_renders_an_hour_long_file() {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = scratch_dir("cli-hour");
    let sr = 16_000u32;
    let frames = 3600 * sr as usize;
    let input = dir.join("hour.wav");
    {
        // 16-bit mono: 115 MB.
        let spec = hound::WavSpec { channels: 1, sample_rate: sr, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut w = hound::WavWriter::create(&input, spec).unwrap();
        let mut tones = hour_tones().into_iter().peekable();
        let mut pos = 0usize;
        while pos < frames {
            match tones.peek() {
                Some(&(t, midi)) if (t * sr as f64) as usize == pos => {
                    let tone = sung_note(midi as f32, 0.0, 1.5, 1.6, sr);
                    for x in &tone {
                        w.write_sample((x.clamp(-1.0, 1.0) * 32767.0) as i16).unwrap();
                    }
                    pos += tone.len();
                    tones.next();
                }
                Some(&(t, _)) => {
                    let until = ((t * sr as f64) as usize).min(frames);
                    for _ in pos..until {
                        w.write_sample(0i16).unwrap();
                    }
                    pos = until;
                }
                None => {
                    for _ in pos..frames {
                        w.write_sample(0i16).unwrap();
                    }
                    pos = frames;
                }
            }
        }
        w.finalize().unwrap();
    }
    let output = dir.join("hour-piano.wav");
    let midi = dir.join("hour-piano.mid");

    // Watch the output path while the render runs: it must never be seen incomplete.
    let done = Arc::new(AtomicBool::new(false));
    let seen_sizes = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (done, seen, output) = (done.clone(), seen_sizes.clone(), output.clone());
        std::thread::spawn(move || {
            let mut sizes = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Ok(m) = std::fs::metadata(&output) {
                    if sizes.last() != Some(&m.len()) {
                        sizes.push(m.len());
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen.store(sizes.len() as u64, Ordering::Relaxed);
            sizes
        })
    };
    let started = Instant::now();
    let res = cli(
        &a,
        &[input.to_str().unwrap(), "-o", output.to_str().unwrap(), "--midi", midi.to_str().unwrap(), "--json"],
        Duration::from_secs(900),
    );
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let sizes = watcher.join().unwrap();
    assert!(res.status.success(), "the hour-long render failed:\n{}", res.stderr);
    let report = hummingface_tests::parse_last_json(&res.stdout).unwrap();
    // The CLI's defaults: the trained listener, notes placed with lookahead.
    assert_eq!((report["listener"].as_str(), report["notes_placed"].as_str()), (Some("trained"), Some("lookahead")));
    let final_size = std::fs::metadata(&output).unwrap().len();
    eprintln!(
        "one hour at {sr} Hz rendered in {elapsed:.0} s (the CLI says {:.0}x real time); output sizes seen while it ran: {sizes:?}",
        report["realtime_factor"].as_f64().unwrap_or(0.0)
    );
    assert!(sizes.iter().all(|&s| s == final_size), "the output was seen incomplete: sizes {sizes:?}, final {final_size}");
    assert_no_temporary_files(&dir, "hour-long render");

    let out = read_wav(&output).unwrap();
    assert_eq!((out.channels.len(), out.sample_rate, out.len()), (1, sr, frames), "output shape");
    assert!(out.channels[0].iter().all(|x| x.is_finite() && x.abs() < 2.0), "output not finite or out of bounds");

    // Notes where the tones are, and only there.
    let notes = report["notes"].as_array().unwrap();
    let tones = hour_tones();
    for &(t, midi_note) in &tones {
        let hit = notes.iter().any(|n| {
            let s = n["start_s"].as_f64().unwrap();
            n["note"].as_u64() == Some(midi_note as u64) && s > t - 0.05 && s < t + 0.3
        });
        assert!(hit, "no note {midi_note} at {t} s");
        // The piano sounds there: RMS over the tone well above the silence around it.
        let i = (t * sr as f64) as usize;
        let rms = hummingface_tests::rms(&out.channels[0][i + sr as usize / 5..i + sr as usize]);
        assert!(rms > 1e-3, "no piano at {t} s (rms {rms})");
    }
    for n in notes {
        let s = n["start_s"].as_f64().unwrap();
        assert!(tones.iter().any(|&(t, _)| s > t - 0.05 && s < t + 1.6), "a note at {s} s, outside every tone");
    }
    // Silence between the tones stays silent (from 5 s after a tone to 50 ms before the next
    // one: the piano's attack may start a few milliseconds before the sung onset, as the onset
    // figures in README say).
    for w in tones.windows(2) {
        let (a, b) = (((w[0].0 + 5.0) * sr as f64) as usize, ((w[1].0 - 0.05) * sr as f64) as usize);
        let peak = out.channels[0][a..b].iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak < 1e-4, "sound in the silence between {} s and {} s: peak {peak}", w[0].0, w[1].0);
    }
    let midi_notes = hummingface_tests::read_midi_notes(&midi).unwrap();
    assert_eq!(midi_notes.len(), notes.len(), "the MIDI file and the report disagree");
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
}

/// Batch rendering (`render IN... --out-dir DIR`): every input rendered into DIR as NAME.wav (and
/// NAME.mid / NAME.png), each output identical to the same file's single render; a broken input
/// among them is one error line naming it, the others are still rendered, and the exit status is 1;
/// names that would collide, an output that would overwrite an input, and several inputs with
/// one `-o` are refused before anything is rendered.
#[test]
fn cli_renders_a_batch_into_a_directory_and_skips_a_broken_file() {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = scratch_dir("cli-batch");
    let melody = |notes: &[(f32, f32, f32)], sr: u32| hummingface_tests::sung_melody(notes, 2.5, sr);
    let first = dir.join("first.wav");
    write_wav(&first, &[melody(&[(57.0, 0.2, 0.8), (62.0, 1.2, 0.9)], 48_000)], 48_000).unwrap();
    let second = dir.join("second.wav");
    let s = melody(&[(64.0, 0.3, 0.6), (60.0, 1.1, 1.0)], 44_100);
    write_wav(&second, &[s.clone(), s.iter().map(|x| x * 0.5).collect()], 44_100).unwrap();
    let broken = dir.join("broken.wav");
    std::fs::write(&broken, b"RIFF this is not audio").unwrap();
    let out = dir.join("out");
    let p = |p: &PathBuf| p.to_str().unwrap().to_string();

    let res = cli(
        &a,
        &[&p(&first), &p(&broken), &p(&second), "--out-dir", &p(&out), "--midi-files", "--png-files", "-j", "2", "--json"],
        Duration::from_secs(120),
    );
    assert_eq!(res.status.code(), Some(1), "one input failed: exit 1\n{}", res.stderr);
    assert!(!res.stderr.contains("panicked"), "{}", res.stderr);
    let errors: Vec<&str> = res.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "one line for the broken file and the summary:\n{}", res.stderr);
    assert!(errors[0].contains("broken.wav") && errors[0].contains("not a supported audio file"), "{}", errors[0]);
    assert!(errors[1].contains("1 of 3 inputs failed; 2 rendered"), "{}", errors[1]);
    let lines: Vec<serde_json::Value> = res.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "one JSON line per input:\n{}", res.stdout);
    assert!(lines[1]["error"].as_str().unwrap().contains("broken.wav"), "{}", lines[1]);
    assert!(lines[1].get("output").is_none());

    for (i, input) in [(0, &first), (2, &second)] {
        let stem = input.file_stem().unwrap().to_str().unwrap();
        assert_eq!(lines[i]["input"].as_str(), Some(p(input).as_str()));
        assert!(lines[i]["notes"].as_array().is_some_and(|n| n.len() >= 2), "{}", lines[i]);
        // The same input rendered alone gives the same files.
        let single = dir.join(format!("{stem}-single.wav"));
        let single_mid = dir.join(format!("{stem}-single.mid"));
        cli(&a, &[&p(input), "-o", &p(&single), "--midi", &p(&single_mid)], Duration::from_secs(60))
            .check("single render")
            .unwrap();
        let (batch, alone) = (read_wav(&out.join(format!("{stem}.wav"))).unwrap(), read_wav(&single).unwrap());
        assert_eq!(batch.channels, alone.channels, "{stem}: the batch render differs from the single render");
        assert_eq!(batch.sample_rate, alone.sample_rate);
        assert_eq!(std::fs::read(out.join(format!("{stem}.mid"))).unwrap(), std::fs::read(&single_mid).unwrap(), "{stem}: MIDI differs");
        let png = std::fs::read(out.join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{stem}.png is not a PNG");
    }
    let mut made: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    made.sort();
    assert_eq!(made, ["first.mid", "first.png", "first.wav", "second.mid", "second.png", "second.wav"], "nothing for the broken input, no temporary file");

    // A directory stands for its audio files (the broken one fails again, the text file is not
    // audio by its name and is left alone).
    let album = dir.join("album");
    std::fs::create_dir_all(&album).unwrap();
    for f in [&first, &second, &broken] {
        std::fs::copy(f, album.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(album.join("notes.txt"), b"not audio").unwrap();
    let out_all = dir.join("out-all");
    let res = cli(&a, &[&p(&album), "--out-dir", &p(&out_all)], Duration::from_secs(120));
    assert_eq!(res.status.code(), Some(1), "{}", res.stderr);
    assert!(res.stderr.contains("1 of 3 inputs failed; 2 rendered"), "{}", res.stderr);
    assert_eq!(read_wav(&out_all.join("first.wav")).unwrap().channels, read_wav(&out.join("first.wav")).unwrap().channels);
    assert!(out_all.join("second.wav").exists());

    // Refused before anything is rendered: one error line, exit 1, no directory made.
    std::fs::create_dir_all(dir.join("x")).unwrap();
    std::fs::copy(&first, dir.join("x").join("second.wav")).unwrap();
    let clash_dir = dir.join("clash");
    let refused: [(Vec<String>, &str); 6] = [
        (vec![p(&dir), "-o".into(), p(&clash_dir.join("y.wav"))], "is a directory: render the audio files in it with --out-dir"),
        (vec![p(&dir.join("x")), p(&dir.join("x")), "--out-dir".into(), p(&clash_dir)], "is given twice"),
        (vec![p(&second), p(&dir.join("x").join("second.wav")), "--out-dir".into(), p(&clash_dir)], "would both be written as"),
        (vec![p(&first), p(&first), "--out-dir".into(), p(&clash_dir)], "is given twice"),
        (vec![p(&first), "--out-dir".into(), p(&dir)], "would overwrite the input"),
        (vec![p(&first), p(&second), "-o".into(), p(&clash_dir.join("y.wav"))], "render several files with --out-dir"),
    ];
    for (args, want) in refused {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let res = cli(&a, &args, Duration::from_secs(60));
        let line = one_error_line(&res, want);
        assert!(line.contains(want), "{args:?}: {line}");
        assert!(res.stdout.is_empty(), "{args:?} rendered something: {}", res.stdout);
    }
    assert!(!clash_dir.exists(), "a refused batch made its directory");
    assert!(!dir.join("first.mid").exists() && read_wav(&first).is_ok(), "the input was touched");
}
