//! Writing the rendered notes as a Standard MIDI File (format 0, one track, channel 1), and
//! reading any Standard MIDI File for `hummingface render-midi`.
//!
//! Timing: 480 ticks per quarter note at a fixed 120 bpm, so one second is 960 ticks and the
//! file lines up with the audio in any sequencer set to 120 bpm.

use std::io::Write;
use std::path::Path;

use hummingface_runtime::RenderedNote;
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use crate::atomic_file::PendingFile;

/// Ticks per quarter note.
pub const TICKS_PER_QUARTER: u16 = 480;
/// Tempo in microseconds per quarter note (120 bpm).
pub const MICROS_PER_QUARTER: u32 = 500_000;
/// Ticks per second at [`TICKS_PER_QUARTER`] and [`MICROS_PER_QUARTER`].
pub const TICKS_PER_SECOND: f64 = TICKS_PER_QUARTER as f64 * 1e6 / MICROS_PER_QUARTER as f64;

/// What went wrong writing a MIDI file.
#[derive(Debug, thiserror::Error)]
pub enum MidiFileError {
    #[error("{path}: cannot write: {reason}")]
    Write {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot convert notes to MIDI: sample rate {0} Hz is not positive")]
    BadSampleRate(f32),
    #[error("{path}: cannot read: {reason}")]
    Read {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{path}: not a Standard MIDI File ({reason})")]
    Parse {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Unsupported {
        path: std::path::PathBuf,
        reason: String,
    },
}

/// A MIDI file read for playing: its note and pedal events on one clock.
#[derive(Debug, Clone)]
pub struct MidiSong {
    /// Note-ons, note-offs and sustain pedal changes, time ordered (seconds from the start).
    pub events: Vec<hummingface_runtime::TimedMidi>,
    /// Note-ons played.
    pub notes: usize,
    /// Note-ons on channel 10 (General MIDI percussion), left out.
    pub percussion_skipped: usize,
    /// Time of the last event, seconds.
    pub end_s: f64,
}

/// Read a Standard MIDI File (format 0 or 1, metrical or SMPTE timing, any tempo map):
/// note-ons (velocity 0 is a note-off), note-offs and the sustain pedal (CC64 ≥ 64 is down) of
/// every channel except channel 10 (percussion), merged in time order.
pub fn read_midi(path: &Path) -> Result<MidiSong, MidiFileError> {
    use hummingface_runtime::generator::MidiIn;
    use hummingface_runtime::TimedMidi;
    let bytes = std::fs::read(path).map_err(|e| MidiFileError::Read { path: path.to_path_buf(), reason: e.to_string() })?;
    let smf = Smf::parse(&bytes).map_err(|e| MidiFileError::Parse { path: path.to_path_buf(), reason: e.to_string() })?;
    if smf.header.format == Format::Sequential {
        return Err(MidiFileError::Unsupported {
            path: path.to_path_buf(),
            reason: "format 2 (sequential tracks) is not supported; save it as format 0 or 1".into(),
        });
    }
    // (tick, order within the tick: tempo first, then offs, pedal, ons; event)
    enum Raw {
        Tempo(u32),
        Midi(MidiIn),
    }
    let mut raw: Vec<(u64, u8, Raw)> = Vec::new();
    let mut percussion_skipped = 0;
    for track in &smf.tracks {
        let mut tick = 0u64;
        for ev in track {
            tick += u64::from(ev.delta.as_int());
            match ev.kind {
                TrackEventKind::Meta(MetaMessage::Tempo(t)) => raw.push((tick, 0, Raw::Tempo(t.as_int()))),
                TrackEventKind::Midi { channel, message } => {
                    let drums = channel.as_int() == 9;
                    let item = match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                            if drums {
                                percussion_skipped += 1;
                                None
                            } else {
                                Some((3, MidiIn::On { note: key.as_int(), velocity: f32::from(vel.as_int()) / 127.0 }))
                            }
                        }
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => Some((1, MidiIn::Off { note: key.as_int() })),
                        MidiMessage::Controller { controller, value } if controller.as_int() == 64 => Some((2, MidiIn::Sustain(value.as_int() >= 64))),
                        _ => None,
                    };
                    if let Some((order, m)) = item.filter(|_| !drums) {
                        raw.push((tick, order, Raw::Midi(m)));
                    }
                }
                _ => {}
            }
        }
    }
    raw.sort_by_key(|(tick, order, _)| (*tick, *order));
    let seconds_per_tick_fixed = match smf.header.timing {
        Timing::Metrical(_) => None,
        Timing::Timecode(fps, sub) => Some(1.0 / (f64::from(fps.as_f32()) * f64::from(sub.max(1)))),
    };
    let tpq = match smf.header.timing {
        Timing::Metrical(t) => f64::from(t.as_int().max(1)),
        Timing::Timecode(..) => 1.0,
    };
    let (mut last_tick, mut seconds, mut us_per_q) = (0u64, 0.0f64, f64::from(MICROS_PER_QUARTER));
    let mut events = Vec::new();
    let mut notes = 0;
    for (tick, _, r) in raw {
        let dt = (tick - last_tick) as f64;
        seconds += match seconds_per_tick_fixed {
            Some(s) => dt * s,
            None => dt * us_per_q / 1e6 / tpq,
        };
        last_tick = tick;
        match r {
            Raw::Tempo(t) => us_per_q = f64::from(t.max(1)),
            Raw::Midi(m) => {
                notes += matches!(m, MidiIn::On { .. }) as usize;
                events.push(TimedMidi { seconds, event: m });
            }
        }
    }
    if notes == 0 {
        return Err(MidiFileError::Unsupported {
            path: path.to_path_buf(),
            reason: if percussion_skipped > 0 {
                "has only percussion (channel 10) notes; nothing for a piano to play".into()
            } else {
                "has no notes".into()
            },
        });
    }
    let end_s = events.last().map_or(0.0, |e| e.seconds);
    Ok(MidiSong { events, notes, percussion_skipped, end_s })
}

/// MIDI velocity 1..=127 for a 0..1 velocity: `round(v * 126) + 1`.
pub fn midi_velocity(velocity: f32) -> u8 {
    let v = if velocity.is_finite() {
        velocity.clamp(0.0, 1.0)
    } else {
        0.0
    };
    (v * 126.0).round() as u8 + 1
}

/// Ticks from the start of the file for a time in samples at `sample_rate` Hz.
fn ticks(sample: u64, sample_rate: f32) -> u64 {
    (sample as f64 * TICKS_PER_SECOND / f64::from(sample_rate)).round() as u64
}

/// The bytes of a format-0 Standard MIDI File holding `notes` (times in samples at
/// `sample_rate` Hz). At equal times, note-offs come before note-ons, so a repeated key is
/// released before it is struck again.
pub fn notes_to_smf(notes: &[RenderedNote], sample_rate: f32) -> Result<Vec<u8>, MidiFileError> {
    if !(sample_rate.is_finite() && sample_rate > 0.0) {
        return Err(MidiFileError::BadSampleRate(sample_rate));
    }
    // (tick, is_on, key, velocity); sorting puts offs (false) before ons at the same tick.
    let mut events: Vec<(u64, bool, u8, u8)> = Vec::with_capacity(notes.len() * 2);
    for n in notes {
        let key = n.note.min(127);
        let on = ticks(n.start_sample, sample_rate);
        let off = ticks(n.end_sample.max(n.start_sample), sample_rate).max(on + 1);
        events.push((on, true, key, midi_velocity(n.velocity)));
        events.push((off, false, key, 0));
    }
    events.sort_by_key(|&(tick, is_on, key, _)| (tick, is_on, key));

    let channel = u4::new(0);
    let mut track: Vec<TrackEvent<'static>> = Vec::with_capacity(events.len() + 2);
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(MICROS_PER_QUARTER))),
    });
    let mut last = 0u64;
    for (tick, is_on, key, vel) in events {
        let delta = u28::new((tick - last).min(u64::from(u28::max_value().as_int())) as u32);
        last = tick;
        let message = if is_on {
            MidiMessage::NoteOn {
                key: u7::new(key),
                vel: u7::new(vel),
            }
        } else {
            MidiMessage::NoteOff {
                key: u7::new(key),
                vel: u7::new(64),
            }
        };
        track.push(TrackEvent {
            delta,
            kind: TrackEventKind::Midi { channel, message },
        });
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });

    let mut smf = Smf::new(Header::new(
        Format::SingleTrack,
        Timing::Metrical(u15::new(TICKS_PER_QUARTER)),
    ));
    smf.tracks.push(track);
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes)
        .map_err(|e| MidiFileError::Write {
            path: "<memory>".into(),
            reason: e.to_string(),
        })?;
    Ok(bytes)
}

/// Write `notes` as a Standard MIDI File at `path`, whole or not at all.
pub fn write_midi(
    path: &Path,
    notes: &[RenderedNote],
    sample_rate: f32,
) -> Result<(), MidiFileError> {
    prepare_midi(path, notes, sample_rate)?
        .commit()
        .map_err(|reason| MidiFileError::Write {
            path: path.to_path_buf(),
            reason,
        })
}

/// [`write_midi`] up to the final rename (see [`PendingFile`]).
pub fn prepare_midi(
    path: &Path,
    notes: &[RenderedNote],
    sample_rate: f32,
) -> Result<PendingFile, MidiFileError> {
    let bytes = notes_to_smf(notes, sample_rate)?;
    PendingFile::write(path, |file| {
        file.write_all(&bytes).map_err(|e| e.to_string())
    })
    .map_err(|reason| MidiFileError::Write {
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(start_s: f64, end_s: f64, note: u8, velocity: f32) -> RenderedNote {
        RenderedNote {
            start_sample: (start_s * 48000.0) as u64,
            end_sample: (end_s * 48000.0) as u64,
            note,
            velocity,
        }
    }

    #[test]
    fn velocity_mapping() {
        assert_eq!(midi_velocity(0.0), 1);
        assert_eq!(midi_velocity(1.0), 127);
        assert_eq!(midi_velocity(0.5), 64);
        assert_eq!(midi_velocity(f32::NAN), 1);
        assert_eq!(midi_velocity(7.0), 127);
    }

    #[test]
    fn smf_round_trip() {
        // A repeated key whose second note starts exactly where the first ends.
        let notes = [note(0.5, 1.0, 60, 0.5), note(1.0, 1.5, 60, 1.0)];
        let bytes = notes_to_smf(&notes, 48000.0).unwrap();
        let smf = Smf::parse(&bytes).unwrap();
        assert_eq!(smf.header.format, Format::SingleTrack);
        assert_eq!(smf.header.timing, Timing::Metrical(u15::new(480)));
        assert_eq!(smf.tracks.len(), 1);

        let mut t = 0u32;
        let mut seen = Vec::new();
        for ev in &smf.tracks[0] {
            t += ev.delta.as_int();
            if let TrackEventKind::Midi { message, .. } = ev.kind {
                match message {
                    MidiMessage::NoteOn { key, vel } => {
                        seen.push((t, true, key.as_int(), vel.as_int()))
                    }
                    MidiMessage::NoteOff { key, .. } => seen.push((t, false, key.as_int(), 0)),
                    _ => {}
                }
            }
        }
        assert_eq!(
            seen,
            vec![
                (480, true, 60, 64),
                (960, false, 60, 0),
                (960, true, 60, 127),
                (1440, false, 60, 0)
            ]
        );
    }

    fn write_smf(tracks: Vec<Vec<TrackEvent<'static>>>, timing: Timing, format: Format) -> tempfile::NamedTempFile {
        let mut smf = Smf::new(Header::new(format, timing));
        smf.tracks = tracks;
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        let mut f = tempfile::Builder::new().suffix(".mid").tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        f
    }

    fn ev(delta: u32, kind: TrackEventKind<'static>) -> TrackEvent<'static> {
        TrackEvent { delta: u28::new(delta), kind }
    }

    fn midi(channel: u8, message: MidiMessage) -> TrackEventKind<'static> {
        TrackEventKind::Midi { channel: u4::new(channel), message }
    }

    #[test]
    fn reads_tempo_changes_pedal_running_offs_and_skips_percussion() {
        use hummingface_runtime::generator::MidiIn;
        let on = |k: u8, v: u8| MidiMessage::NoteOn { key: u7::new(k), vel: u7::new(v) };
        let cc = |c: u8, v: u8| MidiMessage::Controller { controller: u7::new(c), value: u7::new(v) };
        // Format 1: a tempo track (120 bpm, then 60 bpm from beat 2) and a note track.
        let tempo = vec![
            ev(0, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000)))),
            ev(960, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(1_000_000)))),
            ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let notes = vec![
            ev(0, midi(0, cc(64, 127))),
            ev(0, midi(0, on(60, 127))),
            ev(0, midi(9, on(36, 100))), // a kick drum: left out
            ev(480, midi(0, on(60, 0))), // note-on with velocity 0 = note-off
            ev(480, midi(1, on(64, 64))),
            ev(480, midi(1, MidiMessage::NoteOff { key: u7::new(64), vel: u7::new(0) })),
            ev(0, midi(0, cc(64, 0))),
            ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let f = write_smf(vec![tempo, notes], Timing::Metrical(u15::new(480)), Format::Parallel);
        let song = read_midi(f.path()).unwrap();
        assert_eq!(song.notes, 2);
        assert_eq!(song.percussion_skipped, 1);
        let got: Vec<(f64, MidiIn)> = song.events.iter().map(|e| ((e.seconds * 1000.0).round() / 1000.0, e.event)).collect();
        assert_eq!(
            got,
            vec![
                (0.0, MidiIn::Sustain(true)),
                (0.0, MidiIn::On { note: 60, velocity: 1.0 }),
                (0.5, MidiIn::Off { note: 60 }),
                (1.0, MidiIn::On { note: 64, velocity: 64.0 / 127.0 }),
                // 480 ticks at 60 bpm.
                (2.0, MidiIn::Off { note: 64 }),
                (2.0, MidiIn::Sustain(false)),
            ]
        );
        assert_eq!(song.end_s, 2.0);
    }

    #[test]
    fn unreadable_empty_and_drum_only_files_fail_clearly() {
        let missing = read_midi(Path::new("/nonexistent/song.mid")).unwrap_err().to_string();
        assert!(missing.contains("cannot read"), "{missing}");
        let mut junk = tempfile::Builder::new().suffix(".mid").tempfile().unwrap();
        junk.write_all(b"RIFF....WAVEfmt ").unwrap();
        let e = read_midi(junk.path()).unwrap_err().to_string();
        assert!(e.contains("not a Standard MIDI File"), "{e}");
        let drums = vec![
            ev(0, midi(9, MidiMessage::NoteOn { key: u7::new(36), vel: u7::new(100) })),
            ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let f = write_smf(vec![drums], Timing::Metrical(u15::new(480)), Format::SingleTrack);
        let e = read_midi(f.path()).unwrap_err().to_string();
        assert!(e.contains("only percussion"), "{e}");
    }
}
