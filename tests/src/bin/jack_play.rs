//! `hf-jack-play IN.wav --to PREFIX [--loop]`: plays a mono (or first-channel) WAV file into
//! every JACK audio input port whose name starts with PREFIX (e.g. `hummingface:`), like a
//! singer at a microphone, then exits (or starts over with `--loop`, until killed). The file's
//! rate must be the server's. Used to feed the standalone real singing on a dummy JACK server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// WAV file to play (its first channel).
    input: PathBuf,
    /// Connect to every audio input port whose full name starts with this.
    #[arg(long)]
    to: String,
    /// Start over at the end, until killed.
    #[arg(long = "loop")]
    looped: bool,
}

fn run(args: &Args) -> Result<()> {
    let audio = hummingface_tests::read_wav(&args.input)?;
    let samples = audio.channels.first().cloned().unwrap_or_default();
    if samples.is_empty() {
        bail!("{} holds no samples", args.input.display());
    }
    let (client, _) = jack::Client::new("hf-jack-play", jack::ClientOptions::NO_START_SERVER)
        .context("cannot connect to the JACK server")?;
    if client.sample_rate() != audio.sample_rate {
        bail!("the file is {} Hz, the server runs at {} Hz", audio.sample_rate, client.sample_rate());
    }
    let mut out = client.register_port("out", jack::AudioOut::default())?;
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    let looped = args.looped;
    let mut pos = 0usize;
    let handler = jack::contrib::ClosureProcessHandler::new(move |_: &jack::Client, ps: &jack::ProcessScope| {
        for y in out.as_mut_slice(ps).iter_mut() {
            if pos >= samples.len() && looped {
                pos = 0;
            }
            *y = samples.get(pos).copied().unwrap_or(0.0);
            pos += 1;
        }
        if pos >= samples.len() && !looped {
            finished.store(true, Ordering::Release);
        }
        jack::Control::Continue
    });
    let active = client.activate_async((), handler)?;
    let me = format!("{}:out", active.as_client().name());
    let targets: Vec<String> = active
        .as_client()
        .ports(None, Some("32 bit float mono audio"), jack::PortFlags::IS_INPUT)
        .into_iter()
        .filter(|p| p.starts_with(&args.to))
        .collect();
    if targets.is_empty() {
        bail!("no JACK input port starts with '{}'", args.to);
    }
    for t in &targets {
        active.as_client().connect_ports_by_name(&me, t).with_context(|| format!("cannot connect {me} to {t}"))?;
    }
    eprintln!("hf-jack-play: playing {} into {targets:?}", args.input.display());
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The last block has left.
    std::thread::sleep(Duration::from_millis(100));
    active.deactivate()?;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hf-jack-play: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
