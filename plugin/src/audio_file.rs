//! Reading audio files (WAV, FLAC, MP3, Ogg Vorbis via Symphonia) into planar `f32`, and writing
//! 32-bit float WAV files whole or not at all (temporary file in the same folder, then rename).

use std::fs::File;
use std::io::{BufWriter, ErrorKind};
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use crate::atomic_file::PendingFile;

/// Decoded audio: one `Vec` per channel, all the same length.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    /// Samples indexed by `[channel][frame]`, nominally −1..1.
    pub channels: Vec<Vec<f32>>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
}

impl DecodedAudio {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate.max(1))
    }
}

/// What went wrong reading or writing an audio file. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioFileError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the file is empty (0 bytes)")]
    EmptyFile { path: PathBuf },
    #[error("{path}: not a supported audio file (WAV, FLAC, MP3 or Ogg Vorbis): {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: contains no audio track")]
    NoAudioTrack { path: PathBuf },
    #[error("{path}: the audio track does not state its sample rate")]
    NoSampleRate { path: PathBuf },
    #[error("{path}: contains no audio samples")]
    NoSamples { path: PathBuf },
    #[error("{path}: the file is truncated (it ends after {seconds:.3} s of audio)")]
    Truncated { path: PathBuf, seconds: f64 },
    #[error("{path}: corrupt audio data after {seconds:.3} s: {reason}")]
    Corrupt {
        path: PathBuf,
        seconds: f64,
        reason: String,
    },
    #[error(
        "{path}: damaged audio data: decoded {decoded} of the {expected} frames the file declares"
    )]
    Damaged {
        path: PathBuf,
        decoded: u64,
        expected: u64,
    },
    #[error("{path}: read error after {seconds:.3} s: {source}")]
    Read {
        path: PathBuf,
        seconds: f64,
        source: std::io::Error,
    },
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{path}: cannot write audio with {channels} channels and {frames} frames: {reason}")]
    BadOutput {
        path: PathBuf,
        channels: usize,
        frames: usize,
        reason: &'static str,
    },
}

/// Decode a whole audio file. The first (default) audio track is read; if the channel count
/// changes mid-stream, the file keeps the largest count and shorter packets are padded with
/// silence on the missing channels.
pub fn read_audio(path: &Path) -> Result<DecodedAudio, AudioFileError> {
    let p = || path.to_path_buf();
    let file = File::open(path).map_err(|source| AudioFileError::Open { path: p(), source })?;
    let meta = file
        .metadata()
        .map_err(|source| AudioFileError::Open { path: p(), source })?;
    if meta.is_dir() {
        return Err(AudioFileError::Open {
            path: p(),
            source: std::io::Error::new(ErrorKind::InvalidInput, "is a directory"),
        });
    }
    if meta.len() == 0 {
        return Err(AudioFileError::EmptyFile { path: p() });
    }
    let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
    decode(path, mss)
}

/// Decode a whole audio file held in memory, exactly as [`read_audio`] decodes a file on disk;
/// `name` stands for the file in error messages and its extension is the format hint (as the
/// file name's is for [`read_audio`]). The fuzz target `fuzz/fuzz_targets/audio_file.rs` drives
/// the decoder through this.
pub fn decode_audio_bytes(name: &Path, bytes: Vec<u8>) -> Result<DecodedAudio, AudioFileError> {
    if bytes.is_empty() {
        return Err(AudioFileError::EmptyFile { path: name.to_path_buf() });
    }
    let mss = MediaSourceStream::new(
        Box::new(std::io::Cursor::new(bytes)),
        MediaSourceStreamOptions::default(),
    );
    decode(name, mss)
}

/// The decoder behind [`read_audio`] and [`decode_audio_bytes`]. A panic inside the decoding
/// library becomes an error for this file instead of ending the program: `cargo fuzz` found a
/// WAV whose `fmt ` chunk makes Symphonia's RIFF reader (symphonia-format-riff 0.6.1,
/// `read_pcm_fmt`) overflow a `u16` multiplication (channels × bytes per sample). With overflow
/// checks on (debug builds) that is a panic; release builds wrap, only log the value, and then
/// reject the file ("invalid channel count"). `tests/data/fuzz-audio-riff-fmt-overflow.bin` is
/// that input.
fn decode(path: &Path, mss: MediaSourceStream<'_>) -> Result<DecodedAudio, AudioFileError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_stream(path, mss))) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown failure".into());
            Err(AudioFileError::Corrupt {
                path: path.to_path_buf(),
                seconds: 0.0,
                reason: format!("the decoder failed on this file ({what})"),
            })
        }
    }
}

/// [`decode`] without the panic guard.
fn decode_stream(path: &Path, mss: MediaSourceStream<'_>) -> Result<DecodedAudio, AudioFileError> {
    let p = || path.to_path_buf();
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| probe_error(path, e))?;

    let (mut track_id, mut decoder, declared) = open_decoder(path, format.as_mut())?;
    // Frames the container promises, where that count is exact (MP3 without an Info header only
    // has an estimate from the bit rate). Symphonia skips a damaged FLAC frame and goes on, which
    // would silently shift everything after it; the count catches that.
    let exact = !matches!(format.format_info().short_name, "mp1" | "mp2" | "mp3");
    let mut expected_frames = declared.filter(|_| exact);
    let mut out = Accumulator::default();

    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::ResetRequired) => {
                // The stream changed (e.g. a chained Ogg stream): pick the track again.
                (track_id, decoder, _) = open_decoder(path, format.as_mut())?;
                expected_frames = None;
                continue;
            }
            Err(e) => return Err(stream_error(path, &out, e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                out.sample_rate = out.sample_rate.or(Some(buf.spec().rate()));
                buf.copy_to_vecs_planar::<f32>(&mut out.scratch);
                out.append();
            }
            Err(SymphoniaError::ResetRequired) => {
                (track_id, decoder, _) = open_decoder(path, format.as_mut())?;
                expected_frames = None;
            }
            Err(e) => return Err(stream_error(path, &out, e)),
        }
    }

    let sample_rate = match out.sample_rate {
        Some(rate) if rate > 0 => rate,
        _ if out.frames == 0 => return Err(AudioFileError::NoSamples { path: p() }),
        _ => return Err(AudioFileError::NoSampleRate { path: p() }),
    };
    if out.frames == 0 || out.channels.is_empty() {
        return Err(AudioFileError::NoSamples { path: p() });
    }
    if let Some(expected) = expected_frames {
        if (out.frames as u64) < expected {
            return Err(AudioFileError::Damaged {
                path: p(),
                decoded: out.frames as u64,
                expected,
            });
        }
    }
    Ok(DecodedAudio {
        channels: out.channels,
        sample_rate,
    })
}

/// An opened audio track: its id, a decoder for it and the number of frames the container
/// declares (if it does).
type OpenedTrack = (u32, Box<dyn AudioDecoder>, Option<u64>);

/// Find the default audio track and make a decoder for it.
fn open_decoder(path: &Path, format: &mut dyn FormatReader) -> Result<OpenedTrack, AudioFileError> {
    let track =
        format
            .default_track(TrackType::Audio)
            .ok_or_else(|| AudioFileError::NoAudioTrack {
                path: path.to_path_buf(),
            })?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|c| c.audio())
        .ok_or_else(|| AudioFileError::NoAudioTrack {
            path: path.to_path_buf(),
        })?;
    let decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| AudioFileError::Unsupported {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok((track.id, decoder, track.num_frames))
}

/// The error for a file no format reader accepts.
fn probe_error(path: &Path, e: SymphoniaError) -> AudioFileError {
    let path = path.to_path_buf();
    match e {
        SymphoniaError::IoError(source) if source.kind() == ErrorKind::UnexpectedEof => {
            AudioFileError::Unsupported {
                path,
                reason: "the file ends before its header does".into(),
            }
        }
        SymphoniaError::IoError(source) => AudioFileError::Read {
            path,
            seconds: 0.0,
            source,
        },
        other => AudioFileError::Unsupported {
            path,
            reason: other.to_string(),
        },
    }
}

/// The error for a failure while reading packets or decoding them.
fn stream_error(path: &Path, out: &Accumulator, e: SymphoniaError) -> AudioFileError {
    let path = path.to_path_buf();
    let seconds = out.seconds();
    match e {
        SymphoniaError::IoError(source) if source.kind() == ErrorKind::UnexpectedEof => {
            AudioFileError::Truncated { path, seconds }
        }
        SymphoniaError::IoError(source) => AudioFileError::Read {
            path,
            seconds,
            source,
        },
        SymphoniaError::Unsupported(what) => AudioFileError::Unsupported {
            path,
            reason: what.to_string(),
        },
        other => AudioFileError::Corrupt {
            path,
            seconds,
            reason: other.to_string(),
        },
    }
}

/// Decoded audio collected packet by packet.
#[derive(Default)]
struct Accumulator {
    /// Samples so far, indexed by `[channel][frame]`; all channels hold `frames` samples.
    channels: Vec<Vec<f32>>,
    /// Frames so far.
    frames: usize,
    /// Sample rate of the first decoded packet, Hz.
    sample_rate: Option<u32>,
    /// The last packet's samples, indexed by `[channel][frame]` (reused between packets).
    scratch: Vec<Vec<f32>>,
}

impl Accumulator {
    /// Move the samples in `scratch` onto the end of `channels`.
    fn append(&mut self) {
        let packet_frames = self.scratch.iter().map(Vec::len).max().unwrap_or(0);
        if packet_frames == 0 {
            return;
        }
        // A packet with more channels than seen so far: new channels start with silence.
        while self.channels.len() < self.scratch.len() {
            self.channels.push(vec![0.0; self.frames]);
        }
        for (ch, dst) in self.channels.iter_mut().enumerate() {
            match self.scratch.get(ch) {
                Some(src) => {
                    dst.extend_from_slice(src);
                    dst.resize(self.frames + packet_frames, 0.0);
                }
                // A packet with fewer channels: silence on the missing ones.
                None => dst.resize(self.frames + packet_frames, 0.0),
            }
        }
        self.frames += packet_frames;
    }

    /// Duration decoded so far, in seconds.
    fn seconds(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate.unwrap_or(0).max(1))
    }
}

/// Write `channels` (indexed by `[channel][frame]`, equal lengths) as a 32-bit float WAV file at
/// `sample_rate` Hz, whole or not at all (see [`PendingFile`]).
pub fn write_wav_f32(
    path: &Path,
    channels: &[Vec<f32>],
    sample_rate: u32,
) -> Result<(), AudioFileError> {
    prepare_wav_f32(path, channels, sample_rate)?
        .commit()
        .map_err(|reason| AudioFileError::Write {
            path: path.to_path_buf(),
            reason,
        })
}

/// [`write_wav_f32`] up to the final rename, so several outputs can be prepared before any of
/// them appears.
pub fn prepare_wav_f32(
    path: &Path,
    channels: &[Vec<f32>],
    sample_rate: u32,
) -> Result<PendingFile, AudioFileError> {
    let frames = channels.first().map_or(0, Vec::len);
    let bad = |reason| AudioFileError::BadOutput {
        path: path.to_path_buf(),
        channels: channels.len(),
        frames,
        reason,
    };
    if channels.is_empty() {
        return Err(bad("no channels"));
    }
    let num_channels = u16::try_from(channels.len()).map_err(|_| bad("too many channels"))?;
    if channels.iter().any(|c| c.len() != frames) {
        return Err(bad("channels differ in length"));
    }
    if sample_rate == 0 {
        return Err(bad("sample rate is zero"));
    }
    // A RIFF file holds at most 4 GiB; hound would fail late, so check up front.
    let data_bytes = frames as u64 * channels.len() as u64 * 4;
    if data_bytes > u64::from(u32::MAX) - 1024 {
        return Err(bad("larger than the 4 GiB a WAV file can hold"));
    }

    let spec = hound::WavSpec {
        channels: num_channels,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    PendingFile::write(path, |file| {
        let mut writer =
            hound::WavWriter::new(BufWriter::new(file), spec).map_err(|e| e.to_string())?;
        for frame in 0..frames {
            for ch in channels {
                writer.write_sample(ch[frame]).map_err(|e| e.to_string())?;
            }
        }
        writer.finalize().map_err(|e| e.to_string())
    })
    .map_err(|reason| AudioFileError::Write {
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trip_keeps_channels_rate_and_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let left: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        let right: Vec<f32> = left.iter().map(|x| -x).collect();
        write_wav_f32(&path, &[left.clone(), right.clone()], 44100).unwrap();
        let back = read_audio(&path).unwrap();
        assert_eq!(back.sample_rate, 44100);
        assert_eq!(back.channels, vec![left, right]);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn bytes_decode_like_the_file_and_errors_name_the_given_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.wav");
        let left: Vec<f32> = (0..777).map(|i| (i as f32 * 0.03).sin() * 0.25).collect();
        write_wav_f32(&path, &[left.clone(), left], 22050).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let from_file = read_audio(&path).unwrap();
        assert_eq!(decode_audio_bytes(Path::new("x.wav"), bytes.clone()).unwrap(), from_file);
        // The content decides the format, not the name.
        assert_eq!(decode_audio_bytes(Path::new("x.mp3"), bytes.clone()).unwrap(), from_file);
        let err = decode_audio_bytes(Path::new("cut.wav"), bytes[..bytes.len() / 2].to_vec());
        assert!(matches!(err, Err(AudioFileError::Damaged { .. } | AudioFileError::Truncated { .. })), "{err:?}");
        let err = decode_audio_bytes(Path::new("empty.wav"), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("empty.wav"), "{err}");
    }

    /// Found by `cargo fuzz` (target `audio_file`, 13 s into the run): a RIFF/WAVE whose PCM
    /// `fmt ` chunk overflows Symphonia's `u16` block-align product. An error, never a panic, in
    /// any build.
    #[test]
    fn fuzz_found_riff_fmt_overflow_is_an_error() {
        let data = include_bytes!("../../tests/data/fuzz-audio-riff-fmt-overflow.bin");
        // The first byte is the fuzz target's extension pick (0 = ".wav").
        assert_eq!(data[0], 0);
        let err = decode_audio_bytes(Path::new("crash.wav"), data[1..].to_vec()).unwrap_err();
        assert!(err.to_string().contains("crash.wav"), "{err}");
    }

    /// The guard itself: a source that panics inside the decoder (as an overflow check would in
    /// a debug build) gives an error naming the file.
    #[test]
    fn a_panic_inside_the_decoder_is_an_error() {
        struct Exploding(std::io::Cursor<Vec<u8>>);
        impl std::io::Read for Exploding {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.position() > 40 {
                    panic!("decoder bug");
                }
                self.0.read(buf)
            }
        }
        impl std::io::Seek for Exploding {
            fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
                self.0.seek(pos)
            }
        }
        impl symphonia::core::io::MediaSource for Exploding {
            fn is_seekable(&self) -> bool {
                true
            }
            fn byte_len(&self) -> Option<u64> {
                Some(self.0.get_ref().len() as u64)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.wav");
        write_wav_f32(&path, &[vec![0.1; 20_000]], 8000).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mss = MediaSourceStream::new(
            Box::new(Exploding(std::io::Cursor::new(bytes))),
            MediaSourceStreamOptions { buffer_len: 64 * 1024 },
        );
        let err = decode(Path::new("boom.wav"), mss).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("boom.wav") && text.contains("decoder bug"), "{text}");
    }

    #[test]
    fn channel_count_changes_keep_every_channel() {
        let mut acc = Accumulator {
            sample_rate: Some(8000),
            ..Accumulator::default()
        };
        acc.scratch = vec![vec![1.0; 3]];
        acc.append();
        acc.scratch = vec![vec![2.0; 2], vec![3.0; 2]];
        acc.append();
        acc.scratch = vec![vec![4.0; 1]];
        acc.append();
        assert_eq!(acc.frames, 6);
        assert_eq!(
            acc.channels,
            vec![
                vec![1.0, 1.0, 1.0, 2.0, 2.0, 4.0],
                vec![0.0, 0.0, 0.0, 3.0, 3.0, 0.0]
            ]
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.wav");
        assert!(matches!(
            read_audio(&missing),
            Err(AudioFileError::Open { .. })
        ));

        let empty = dir.path().join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            read_audio(&empty),
            Err(AudioFileError::EmptyFile { .. })
        ));

        let text = dir.path().join("text.wav");
        std::fs::write(&text, b"this is not audio, just some text\n").unwrap();
        assert!(matches!(
            read_audio(&text),
            Err(AudioFileError::Unsupported { .. })
        ));
    }

    #[test]
    fn truncated_wav_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wav");
        write_wav_f32(&path, &[vec![0.25; 48000]], 48000).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2 + 1]).unwrap();
        assert!(read_audio(&path).is_err());
    }

    #[test]
    fn a_failed_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("never.wav");
        assert!(write_wav_f32(&path, &[vec![0.0; 10], vec![0.0; 9]], 48000).is_err());
        assert!(write_wav_f32(&path, &[], 48000).is_err());
        drop(prepare_wav_f32(&path, &[vec![0.0; 10]], 48000).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
