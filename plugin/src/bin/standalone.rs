//! `hummingface-standalone`: the plugin without a DAW, on JACK, ALSA or the dummy backend
//! (`-b auto|jack|alsa|dummy`; `--help` lists every option: sample rate, period size, devices,
//! JACK connections).
//!
//! Opens the editor window; SIGINT, SIGTERM or closing the window stop it (within 8 s even when
//! the audio backend hangs).
//!
//! Example: `hummingface-standalone -b jack --connect-jack-inputs system:capture_1`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hummingface::HummingFace;
use nice_plug::prelude::nice_export_standalone;

/// How long the standalone waits, after a stop signal or its window closing, for the audio
/// backend to stop before it exits without it. A normal stop takes well under a second.
const STOP_GRACE: Duration = Duration::from_secs(8);

fn main() -> ExitCode {
    hummingface_runtime::generator::pin_thread_count_env();
    // SIGINT/SIGTERM/SIGHUP close the editor window, so the standalone stops cleanly (exit 0)
    // with its editor open too.
    hummingface::editor::close_on_signals();
    spawn_stop_watchdog();
    // Returns false when the plugin fails to activate or the audio backend fails.
    if nice_export_standalone::<HummingFace>() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A stop signal, or the window closed by hand, must stop the standalone even when the audio
/// backend cannot: on a JACK server that does not answer (hung, stopped, or overloaded past its
/// client timeout) nice-plug's JACK backend waits in `jack_deactivate`, or for a process call
/// that never comes, and the process would outlive the signal or the window by the server's
/// timeout or forever. Once a signal has arrived or the editor window has closed this thread
/// gives the normal stop [`STOP_GRACE`], then says so on stderr and ends the process (`_exit`,
/// without running destructors that could call into the stuck backend again). The standalone
/// holds no unsaved state: presets and the window size are written as they change.
fn spawn_stop_watchdog() {
    let spawned = std::thread::Builder::new()
        .name("hf-stop-watchdog".into())
        .spawn(|| {
            let stop = loop {
                if hummingface::editor::close_signal_received() {
                    break "stop signal";
                }
                if hummingface::editor::window_closed() {
                    break "window closing";
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let since = Instant::now();
            std::thread::sleep(STOP_GRACE);
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "HummingFace: the audio backend did not stop within {:.0} s of the {stop} \
                 (a JACK server that does not answer?); exiting without waiting for it",
                since.elapsed().as_secs_f64()
            );
            let _ = err.flush();
            let _ = std::io::stdout().lock().flush();
            signal_hook::low_level::exit(0);
        });
    if let Err(e) = spawned {
        eprintln!("HummingFace: cannot start the stop watchdog ({e}); a stuck audio backend may delay exit");
    }
}
