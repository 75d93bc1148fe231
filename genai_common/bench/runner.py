"""Load the model of each kind through the runtime's loaders, run the kind's benchmark, add the
roofline figures, and write the outputs (JSON record, plots, RESULTS.md row)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def load_subject(path: str, kind: str, label: str, trust_remote_code: bool = False) -> Any:
    from genai_common.bench.llm import Subject
    from genai_common.runtime import loading

    if kind == "llm":
        loaded = loading.load_llm(path, trust_remote_code=trust_remote_code)
        runner = loaded.tokenizer
    else:
        loaded = loading.load_vlm(path, trust_remote_code=trust_remote_code)
        runner = loaded.processor
    config = loaded.config or {}  # the loader already read config.json
    return Subject(label, path, kind, loaded.model, runner, config, loaded.record.to_json())


def _llm_roofline(subject: Any, result: dict[str, Any], peak: dict[str, Any] | None) -> None:
    from genai_common.bench import roofline

    total, per_token, source = roofline.weight_bytes(subject.path)
    if per_token is None:
        (total, per_token), source = roofline.parameter_bytes(subject.model), "loaded parameters"
    decode = (result["summary"].get("decode_tps") or {}).get("median")
    roof = roofline.decode_roofline(per_token, decode, peak)
    roof["weight_source"] = source
    roof["all_weight_bytes"] = total
    ttft = (result["summary"].get("ttft") or {}).get("median")
    flops = roofline.prefill_flops(subject.config, result.get("prompt_tokens") or 0)
    if flops and ttft and subject.kind == "llm":
        roof["prefill_flops"] = flops
        roof["prefill_flops_per_s"] = flops / ttft
        roof["prefill_note"] = "estimated from config.json; TTFT also holds one decode step"
    result["roofline"] = roof


def _peak(args: argparse.Namespace, progress: Any) -> dict[str, Any] | None:
    if args.no_roofline:
        return None
    from genai_common.bench import roofline

    if progress is not None:
        progress.start("bandwidth probe (cached per machine)", 1)
    peak = roofline.peak_bandwidth(refresh=args.refresh_peak)
    if progress is not None:
        progress.advance()
    return peak


def _trust(args: argparse.Namespace) -> bool:
    """--trust-remote-code: the user lets the loaders run code the model folder names."""
    return getattr(args, "trust_remote_code", False) is True


def run_benchmark(record: dict[str, Any], args: argparse.Namespace, progress: Any) -> None:
    """Fill record['subjects'], record['results'] (and record['peak']) for the record's kind."""
    kind = record["kind"]
    if kind in ("llm", "vlm"):
        from genai_common.bench import llm

        paths = [("A", str(args.path))] + ([("B", str(args.against))] if args.against else [])
        if progress is not None:
            progress.start("loading", len(paths))
        subjects = []
        for label, path in paths:
            subjects.append(load_subject(path, kind, label, _trust(args)))
            if progress is not None:
                progress.advance(f"loaded {label}")
        record["subjects"] = [{"label": s.label, "path": s.path, "load": s.load} for s in subjects]
        record["results"] = llm.bench(
            subjects,
            prompt_tokens=args.prompt_tokens,
            gen_tokens=args.gen_tokens,
            trials=args.trials,
            warmup=args.warmup,
            cooldown=args.cooldown,
            prompts=args.prompts,
            seed=args.seed,
            image_size=args.image_size,
            progress=progress,
        )
        peak = _peak(args, progress)
        record["peak"] = peak
        by_label = {s.label: s for s in subjects}
        for result in record["results"]:
            _llm_roofline(by_label[result["subject"]], result, peak)
        if len(subjects) == 2:
            from genai_common.bench.compare import compare_records

            side = {
                label: [r for r in record["results"] if r["subject"] == label] for label in "AB"
            }
            record["comparison"] = compare_records(
                {"kind": kind, "results": side["A"]},
                {"kind": kind, "results": side["B"]},
                match_subject=False,
            )
    elif kind == "diffusion":
        _run_diffusion(record, args, progress)
    elif kind == "ml":
        _run_ml(record, args)
    else:
        raise ValueError(f"no benchmark for kind {kind!r}")


def _run_diffusion(record: dict[str, Any], args: argparse.Namespace, progress: Any) -> None:
    from genai_common.bench import diffusion
    from genai_common.runtime import loading

    loaded = loading.load_diffusion(str(args.path), trust_remote_code=_trust(args))
    pipe = loaded.pipeline
    record["subjects"] = [{"label": "A", "path": str(args.path), "load": loaded.record.to_json()}]
    size = args.size
    if size is None:
        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        sample = getattr(denoiser.config, "sample_size", 64) if denoiser is not None else 64
        size = int(sample) * int(getattr(pipe, "vae_scale_factor", 8))
    results = diffusion.bench(
        pipe,
        steps=args.steps,
        height=size,
        width=size,
        guidance=args.guidance,
        trials=args.trials,
        warmup=args.warmup,
        cooldown=args.cooldown,
        seed=args.seed,
        progress=progress,
    )
    counts = None
    if not args.no_roofline:  # the count is an extra, untimed 2-step run of the pipeline
        counts = diffusion.count_flops(
            pipe, height=size, width=size, guidance=args.guidance, seed=args.seed
        )
    for result in results:
        result["roofline"] = diffusion.achieved(counts, result["summary"])
    record["results"] = results


def _run_ml(record: dict[str, Any], args: argparse.Namespace) -> None:
    from genai_common.bench import ml
    from genai_common.runtime import loading

    loaded = loading.load_ml(str(args.path), trust_remote_code=_trust(args))
    record["subjects"] = [{"label": "A", "path": str(args.path), "load": loaded.record.to_json()}]
    record["results"] = ml.bench(
        loaded.model,
        loaded.config,  # load_ml raises without a readable config.json
        batch_size=args.batch_size,
        trials=args.trials,
        warmup=args.warmup,
        train_step=args.train_step,
        seed=args.seed,
    )


def write_outputs(record: dict[str, Any], out: Path, *, plots: bool = True) -> dict[str, Path]:
    """JSON record and plots under OUT/bench/, then one row appended to OUT/RESULTS.md."""
    from genai_common.bench import records
    from genai_common.bench.summary import headline

    bench_dir = out / "bench"
    history = records.history(bench_dir, kind=record["kind"], model=record["model"])
    json_path = records.write_json(record, bench_dir)
    written: dict[str, Path] = {"record": json_path}
    if plots:
        from genai_common.bench.plots import write_plots

        for name, path in write_plots(record, history, bench_dir, json_path.stem).items():
            written[f"plot {name}"] = path
    links = {"json": json_path.relative_to(out).as_posix()}
    for name, path in written.items():
        if name.startswith("plot "):
            links[name[5:]] = path.relative_to(out).as_posix()
    results_md = out / "RESULTS.md"
    records.append_row(results_md, records.results_row(record, headline(record), links))
    written["results"] = results_md
    return written


def write_and_print(record: dict[str, Any], args: Any, after: str = "") -> int:
    """Write the record, plots and RESULTS.md row (unless --no-record), then print the record
    (--json) or the report with `after` below it. 0, or 2 when the record could not be written."""
    import json
    import sys

    from genai_common.bench import records

    written: dict[str, Any] = {}
    if not args.no_record:
        from genai_common.runtime.files import DocumentError

        try:
            written = write_outputs(record, Path(args.out), plots=not args.no_plots)
        except (DocumentError, OSError) as exc:
            print(f"genai bench: the record was not written: {exc}", file=sys.stderr)
            return 2
        record["written"] = {k: str(v) for k, v in written.items()}
    if args.json:
        print(json.dumps(record, default=records._jsonable))
    else:
        from genai_common.bench.summary import render_text

        print(render_text(record, written) + (f"\n\n{after}" if after else ""))
    return 0
