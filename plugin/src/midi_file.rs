//! Writing the rendered notes as a Standard MIDI File (format 0, one track, channel 1).
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
}
