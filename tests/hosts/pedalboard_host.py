#!/usr/bin/env python3
"""Render a WAV file through a VST3 plugin with Spotify's pedalboard (a JUCE-based host).

    pedalboard_host.py PLUGIN.vst3 --input IN.wav --output OUT.wav
                       [--param python_name=value]... [--buffer-size N] [--no-params]

Loads the plugin with ``pedalboard.load_plugin``, lists its parameters, processes the whole input
file in one ``process`` call at the file's sample rate (pedalboard renders VST3 plugins in offline,
non-realtime mode, in blocks of ``--buffer-size`` frames), writes the output as a 32-bit float WAV
and prints one JSON object on stdout:

    {"plugin": ..., "params": [names], "param_details": [...], "latency": samples or null,
     "sample_rate": ..., "input_channels": ..., "channels": ..., "input_samples": ...,
     "output_samples": ..., "buffer_size": ..., "elapsed_s": ...}

``latency`` is what the plugin reports to the host (``reported_latency_samples``), ``null`` if this
pedalboard version does not expose it. Any failure: a message on stderr and exit status 1.

Run with the project's venv (tests/hosts/setup_venv.sh makes it): .venv/bin/python.
"""

import argparse
import json
import sys
import time


def fail(msg: str) -> "NoReturn":  # noqa: F821
    print(f"pedalboard_host: error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_value(text: str):
    low = text.strip().lower()
    if low in ("true", "on", "yes"):
        return True
    if low in ("false", "off", "no"):
        return False
    try:
        return float(text)
    except ValueError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("plugin", help="path to the .vst3 bundle")
    ap.add_argument("--input", required=True, help="input WAV")
    ap.add_argument("--output", required=True, help="output WAV (32-bit float)")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="set a parameter (pedalboard python name) before processing")
    ap.add_argument("--buffer-size", type=int, default=8192,
                    help="frames per process call inside pedalboard (default 8192)")
    ap.add_argument("--no-params", action="store_true",
                    help="skip listing parameter details (each one is probed 1000 times)")
    args = ap.parse_args()

    try:
        import numpy as np
        import soundfile as sf
        import pedalboard
    except ImportError as e:
        fail(f"{e}; run tests/hosts/setup_venv.sh and use .venv/bin/python")

    try:
        audio, sample_rate = sf.read(args.input, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types
        fail(f"cannot read {args.input}: {e}")
    audio = np.ascontiguousarray(audio.T)  # (channels, samples), as pedalboard expects
    in_channels, in_samples = audio.shape

    try:
        plugin = pedalboard.load_plugin(args.plugin)
    except Exception as e:
        fail(f"cannot load {args.plugin}: {e}")

    names = []
    details = []
    try:
        params = plugin.parameters  # dict: python name -> AudioProcessorParameter
    except Exception as e:
        fail(f"cannot list parameters: {e}")
    for python_name, p in params.items():
        names.append(p.name)
        if args.no_params:
            continue
        entry = {"name": p.name, "python_name": python_name}
        for attr in ("min_value", "max_value", "step_size", "label"):
            v = getattr(p, attr, None)
            entry[attr] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
        try:
            entry["raw_value"] = float(p.raw_value)
            entry["string_value"] = str(p.string_value)
        except Exception:
            pass
        try:
            entry["value"] = getattr(plugin, python_name)
            if not isinstance(entry["value"], (int, float, str, bool)):
                entry["value"] = str(entry["value"])
        except Exception:
            pass
        details.append(entry)

    for setting in args.param:
        if "=" not in setting:
            fail(f"--param {setting}: expected NAME=VALUE")
        name, value = setting.split("=", 1)
        name = name.strip()
        if name not in params:
            matches = [k for k, p in params.items() if p.name.lower() == name.lower()]
            if not matches:
                fail(f"--param {setting}: no parameter {name!r}; have {sorted(params)}")
            name = matches[0]
        try:
            setattr(plugin, name, parse_value(value))
        except Exception as e:
            fail(f"--param {setting}: {e}")

    latency = getattr(plugin, "reported_latency_samples", None)

    t0 = time.monotonic()
    try:
        out = plugin.process(audio, float(sample_rate), buffer_size=args.buffer_size, reset=True)
    except Exception as e:
        fail(f"process failed: {e}")
    elapsed = time.monotonic() - t0
    # The latency may only be known once the plugin was prepared for this rate: read it again.
    latency_after = getattr(plugin, "reported_latency_samples", None)

    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 1:
        out = out[np.newaxis, :]
    if not np.all(np.isfinite(out)):
        fail("the plugin produced NaN or infinite samples")
    try:
        sf.write(args.output, out.T, int(sample_rate), subtype="FLOAT")
    except Exception as e:
        fail(f"cannot write {args.output}: {e}")

    report = {
        "plugin": getattr(plugin, "name", None),
        "is_effect": bool(getattr(plugin, "is_effect", False)),
        "params": names,
        "param_details": details,
        "latency": latency_after if latency_after is not None else latency,
        "latency_before_process": latency,
        "sample_rate": sample_rate,
        "input_channels": in_channels,
        "channels": int(out.shape[0]),
        "input_samples": in_samples,
        "output_samples": int(out.shape[1]),
        "buffer_size": args.buffer_size,
        "elapsed_s": elapsed,
        "pedalboard_version": getattr(pedalboard, "__version__", None),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
