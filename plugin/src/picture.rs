//! `hummingface render … --png OUT.png`: what was heard, at a glance. The notes as a piano roll
//! (one row per semitone, black-key rows shaded, an octave line at every C) and the sung pitch
//! curve over them, on the input's clock. Drawn with plotters into memory and written whole or
//! not at all (temporary file, then rename).

use std::io::Write;
use std::path::Path;
use std::sync::Once;

use hummingface_runtime::{PitchCurve, RenderedNote};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::atomic_file::PendingFile;

/// Picture size in pixels.
pub const WIDTH: u32 = 1600;
pub const HEIGHT: u32 = 800;

/// Font family name the picture registers its built-in font under.
const FONT: &str = "hummingface-sans";

const BACKGROUND: RGBColor = RGBColor(0x20, 0x23, 0x29);
const ROW_WHITE: RGBColor = RGBColor(0x2b, 0x2f, 0x37);
const ROW_BLACK: RGBColor = RGBColor(0x22, 0x25, 0x2c);
const OCTAVE: RGBColor = RGBColor(0x55, 0x5c, 0x69);
const NOTE: RGBColor = RGBColor(0xf5, 0xa6, 0x23);
const NOTE_EDGE: RGBColor = RGBColor(0xff, 0xd2, 0x80);
const PITCH: RGBColor = RGBColor(0x4f, 0xd1, 0xff);
const TEXT: RGBColor = RGBColor(0xc8, 0xcd, 0xd6);

/// What went wrong drawing or writing the picture.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("{path}: cannot draw the picture: {reason}")]
    Draw { path: std::path::PathBuf, reason: String },
    #[error("{path}: cannot write: {reason}")]
    Write { path: std::path::PathBuf, reason: String },
}

/// Register the built-in font once (egui's Ubuntu Light: no system fonts needed).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font compiled into the binary; if they were not, text
        // would be left out and the picture drawn without labels.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
    });
}

/// MIDI note range shown: the notes and the voiced pitch, padded, at least two octaves.
fn note_range(notes: &[RenderedNote], pitch: &PitchCurve) -> (i32, i32) {
    let values = notes
        .iter()
        .map(|n| f32::from(n.note))
        .chain(pitch.midi.iter().copied().filter(|p| p.is_finite() && (12.0..=120.0).contains(p)));
    let (lo, hi) = values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (48, 72);
    }
    let (mut lo, mut hi) = (lo.floor() as i32 - 3, hi.ceil() as i32 + 3);
    if hi - lo < 24 {
        let mid = (lo + hi) / 2;
        lo = mid - 12;
        hi = mid + 12;
    }
    (lo.max(0), hi.min(127))
}

/// Name of a MIDI note, `C4` = 60.
fn note_name(n: i32) -> String {
    const NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
    format!("{}{}", NAMES[n.rem_euclid(12) as usize], n.div_euclid(12) - 1)
}

/// Draw the piano roll of `notes` (sample times at `sample_rate`) and `pitch` for an input of
/// `seconds`, as RGB pixels, `WIDTH × HEIGHT`, row by row.
pub fn draw(
    notes: &[RenderedNote],
    pitch: &PitchCurve,
    sample_rate: f32,
    seconds: f64,
    title: &str,
) -> Result<Vec<u8>, String> {
    register_font();
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    let (lo, hi) = note_range(notes, pitch);
    let seconds = seconds.max(0.1);
    let sr = f64::from(sample_rate.max(1.0));
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&BACKGROUND).map_err(|e| e.to_string())?;
        let font = |size: f64| FontDesc::new(FontFamily::Name(FONT), size, FontStyle::Normal).color(&TEXT);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, font(24.0))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..seconds, (lo as f64 - 0.5)..(hi as f64 + 0.5))
            .map_err(|e| e.to_string())?;

        // Rows: one per semitone.
        for n in lo..=hi {
            let black = matches!(n.rem_euclid(12), 1 | 3 | 6 | 8 | 10);
            let row = [(0.0, n as f64 - 0.5), (seconds, n as f64 + 0.5)];
            chart
                .draw_series(std::iter::once(Rectangle::new(row, if black { ROW_BLACK } else { ROW_WHITE }.filled())))
                .map_err(|e| e.to_string())?;
            if n.rem_euclid(12) == 0 {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(0.0, n as f64 - 0.5), (seconds, n as f64 - 0.5)],
                        OCTAVE.stroke_width(1),
                    )))
                    .map_err(|e| e.to_string())?;
            }
        }
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("seconds")
            .axis_desc_style(font(16.0))
            .label_style(font(14.0))
            .axis_style(OCTAVE)
            .y_labels((hi - lo + 1) as usize)
            .y_label_formatter(&|v| {
                let n = v.round() as i32;
                if n.rem_euclid(12) == 0 || n.rem_euclid(12) == 7 { note_name(n) } else { String::new() }
            })
            .draw()
            .map_err(|e| e.to_string())?;

        // Notes.
        chart
            .draw_series(notes.iter().filter(|n| (lo..=hi).contains(&i32::from(n.note))).flat_map(|n| {
                let (x0, x1) = (n.start_sample as f64 / sr, n.end_sample as f64 / sr);
                let y = f64::from(n.note);
                let r = [(x0, y - 0.42), (x1.min(seconds), y + 0.42)];
                [Rectangle::new(r, NOTE.filled()), Rectangle::new(r, NOTE_EDGE.stroke_width(1))]
            }))
            .map_err(|e| e.to_string())?;

        // The pitch curve, one line per voiced stretch.
        let mut stretch: Vec<(f64, f64)> = Vec::new();
        let mut stretches = Vec::new();
        for (i, &p) in pitch.midi.iter().enumerate() {
            let t = pitch.time(i);
            if p.is_finite() && (0.0..=seconds).contains(&t) {
                stretch.push((t, f64::from(p).clamp(lo as f64 - 0.5, hi as f64 + 0.5)));
            } else if !stretch.is_empty() {
                stretches.push(std::mem::take(&mut stretch));
            }
        }
        stretches.push(stretch);
        for s in stretches.into_iter().filter(|s| s.len() >= 2) {
            chart.draw_series(LineSeries::new(s, PITCH.stroke_width(2))).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(pixels)
}

/// [`draw`] and encode as PNG into a temporary file beside `path` (see [`PendingFile`]).
pub fn prepare_png(
    path: &Path,
    notes: &[RenderedNote],
    pitch: &PitchCurve,
    sample_rate: f32,
    seconds: f64,
    title: &str,
) -> Result<PendingFile, PictureError> {
    let pixels = draw(notes, pitch, sample_rate, seconds, title)
        .map_err(|reason| PictureError::Draw { path: path.to_path_buf(), reason })?;
    PendingFile::write(path, |file| {
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(&mut *file), WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        file.flush().map_err(|e| e.to_string())
    })
    .map_err(|reason| PictureError::Write { path: path.to_path_buf(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_and_pitch_are_drawn_where_they_belong() {
        let sr = 48000.0;
        let notes = [
            RenderedNote { start_sample: 24000, end_sample: 72000, note: 60, velocity: 0.8 },
            RenderedNote { start_sample: 96000, end_sample: 144000, note: 67, velocity: 0.8 },
        ];
        let pitch = PitchCurve {
            first_s: 0.0,
            hop_s: 0.01,
            midi: (0..300).map(|i| if (50..150).contains(&i) { 60.1 } else if (200..300).contains(&i) { 66.9 } else { f32::NAN }).collect(),
        };
        let px = draw(&notes, &pitch, sr, 3.0, "test").unwrap();
        assert_eq!(px.len(), (WIDTH * HEIGHT * 3) as usize);
        let count = |c: RGBColor| px.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count();
        // Two bars of a second each, and the curve.
        assert!(count(NOTE) > 2000, "note pixels: {}", count(NOTE));
        assert!(count(PITCH) > 500, "pitch pixels: {}", count(PITCH));
        // The G bar is above the C bar: the highest note pixel starts later in time.
        let first_note_col = |rows: std::ops::Range<u32>| {
            rows.flat_map(|y| (0..WIDTH).map(move |x| (x, y)))
                .filter(|&(x, y)| {
                    let i = ((y * WIDTH + x) * 3) as usize;
                    px[i..i + 3] == [NOTE.0, NOTE.1, NOTE.2]
                })
                .map(|(x, _)| x)
                .min()
        };
        let top = first_note_col(0..HEIGHT / 2).expect("a note in the upper half");
        let bottom = first_note_col(HEIGHT / 2..HEIGHT).expect("a note in the lower half");
        assert!(top > bottom, "G (upper) starts after C (lower): {top} vs {bottom}");
    }
}
