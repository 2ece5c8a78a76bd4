"""Regenerate the tables of benchmarks/README.md from the recorded results (never typed by hand).

Usage: ``python -m benchmarks.summarize`` (repository root). Recomputes each convergence record's
plateau with the current rule, then rewrites the text between the
``<!-- convergence:begin -->`` / ``<!-- convergence:end -->`` and ``<!-- lr-search:begin -->`` /
``<!-- lr-search:end -->`` markers (and likewise ``pipeline``, ``experiments``, ``temporal``, ``speed`` and
``robustness``) of
``benchmarks/README.md`` from ``benchmarks/results/convergence/*.json``,
``benchmarks/results/lr-search/*.json``, ``benchmarks/results/pipeline-cpu.json`` and
``benchmarks/results/experiments/*.json``, and the ``detector`` table from ``metrics/detector.json``
and ``benchmarks/results/detector/*.json``.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

from lifting import convergence
from lifting.io import write_json
from lifting.report.tables import budget_label
from lifting.speed import read_metrics

RESULTS = Path("benchmarks/results")
README = Path("benchmarks/README.md")


def convergence_table(folder: Path = RESULTS / "convergence") -> str:
    rows = ["| run | 2D input | recipe | points | last: samples, core-s | last P1 / P2 | plateau P1 / P2 | reached at (samples, core-s) | converged |",
            "|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        found = record.get("plateau") or {}
        for recipe in record["recipes"]:
            curve = recipe["curve"]
            if not curve:
                continue
            last = curve[-1]
            is_plateau = found.get("recipe") == recipe["name"]
            plateau = f"**{found['p1']:.1f} / {found['p2']:.1f}**" if is_plateau else "–"
            reached = f"{found['samples_seen']:,}, {found['core_seconds']:,.0f}" if is_plateau else "–"
            verdict = "yes" if found.get("converged") else "no (cut short)" if not recipe.get("finished") else "no (still falling)"
            converged = verdict if is_plateau else "–"
            status = "" if recipe.get("finished") else " (running or cut short)"
            rows.append(f"| {record['run']} | {record['input2d']} | {recipe['label']}{status} | {len(curve)} | "
                        f"{last['samples_seen']:,}, {last['core_seconds']:,.0f} | {last['p1']:.1f} / {last['p2']:.1f} | "
                        f"{plateau} | {reached} | {converged} |")
    return "\n".join(rows)


def lr_search_table(folder: Path = RESULTS / "lr-search") -> str:
    rows = ["| run | 2D input | recipe (besides the lr) | validation MPJPE (mm) by lr scale | chosen |", "|---|---|---|---|---|"]
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        budget = record["budget"]
        recipe = (f"{budget['max_epochs']} epochs, batch {budget['batch_size'] or 'paper'}, {budget['decay']} decay, "
                  f"warm-up {budget['warmup']:.0%}"
                  + (f", every {budget['train_stride']}th frame" if budget.get("train_stride", 1) > 1 else "")
                  # the precision that ran (bf16_cpu asks for bf16, which a CPU without fast bf16 ignores)
                  + (", bf16 autocast" if record.get("precision", "bf16 autocast" if budget.get("bf16_cpu") else "fp32")
                     == "bf16 autocast" else ""))
        trials = ", ".join(f"x{t['lr_scale']:g}: {t['val_mpjpe_mm']:.1f}" for t in record["trials"])
        rows.append(f"| {record['run']} | {record['input2d']} | {recipe} | {trials} | x{record['best_lr_scale']:g} |")
    return "\n".join(rows)


def pipeline_table(path: Path = RESULTS / "pipeline-cpu.json") -> str:
    """Seconds and peak memory per stage of a fresh clone's run, and the totals."""
    record = json.loads(path.read_text())
    machine = record["machine"]
    rows = []
    if "fast_cpu_bf16" in machine:
        rows += [f"Machine: {machine['cpus']} CPUs ({machine['processor']}, {machine['cpu_capability']}, fast bf16: "
                 f"{'yes' if machine['fast_cpu_bf16'] else 'no, so the bf16 budgets trained in fp32'}), "
                 f"torch {machine['torch']}, CUDA: {'yes' if machine['cuda'] else 'no'}"
                 + (f"; the CPU has {', '.join(machine['cpu_extensions'])} and was held to "
                    + ", ".join(f"{k}={v}" for k, v in machine["isa_limited_by"].items())
                    if "isa_limited_by" in machine else "") + ".", ""]
    rows += ["| stage | seconds | peak memory (MB) |", "|---|---|---|"]
    if "setup_seconds" in record:
        rows.append(f"| `make setup` (venv, pinned dependencies, pip cache warm) | {record['setup_seconds']:.0f} | – |")
    rows += [f"| `{stage['stage']}` | {stage['seconds']:.0f} | {stage['peak_rss_mb']:.0f} |" for stage in record["stages"]]
    training = sum(s["seconds"] for s in record["stages"] if s["stage"].startswith("train"))
    rows.append(f"| all training stages | {training:.0f} ({training / 60:.1f} min) | – |")
    total = record.get("fresh_clone_total_seconds", record["total_seconds"])
    rows.append(f"| **total** ({record.get('command', 'every stage')}) | **{total:.0f} ({total / 60:.1f} min)** | – |")
    return "\n".join(rows)


#: Stage names of the reference measurement that the pipeline has since renamed.
RENAMED_STAGES = {"train@simple_baseline-gt": "train_simple_baseline@gt",
                  "train@simple_baseline-detected": "train_simple_baseline@detected",
                  "train_heavy@semgcn-gt": "train_semgcn@gt", "train_heavy@modulated_gcn-gt": "train_modulated_gcn@gt",
                  "train_heavy@hgn-gt": "train_hgn@gt"}


def machine_ratio_table(path: Path = RESULTS / "pipeline-cpu.json",
                        reference: Path = RESULTS / "pipeline-cpu-reference-avx2.json") -> str:
    """The training stages of the current measurement whose work the reference measurement (a real
    2-core AVX2-only machine) also timed, side by side; their median ratio projects the current
    fresh-clone total onto the reference machine."""
    record, earlier = json.loads(path.read_text()), json.loads(reference.read_text())
    before = {RENAMED_STAGES.get(row["stage"], row["stage"]): row["seconds"] for row in earlier["stages"]}
    rows = ["| stage | seconds here | seconds on the reference machine | reference / here |", "|---|---|---|---|"]
    ratios = []
    for row in record["stages"]:
        if row["stage"].startswith("train_") and row["stage"] in before and row["stage"] != "train_detector":
            ratios.append(before[row["stage"]] / row["seconds"])
            rows.append(f"| `{row['stage']}` | {row['seconds']:.0f} | {before[row['stage']]:.0f} | {ratios[-1]:.2f} |")
    ratio = statistics.median(ratios)
    total = record.get("fresh_clone_total_seconds", record["total_seconds"])
    rows += ["", f"Median ratio {ratio:.2f}: the fresh clone's {total / 60:.1f} min here would take about "
                 f"**{total * ratio / 60:.1f} min** on the reference machine."]
    return "\n".join(rows)


def rie_spread_table(path: Path = RESULTS / "reliability" / "rie-run-to-run.json") -> str:
    """P1 of each training of Pose3D-RIE's default chain, and their mean and sample standard deviation."""
    record = json.loads(path.read_text())
    rows = ["| run | machine | scored on | P1 (mm) |", "|---|---|---|---|"]
    rows += [f"| {run['run']} | {run['machine']} | {run['scored_on']} | {run['p1_mm']:.2f} |" for run in record["runs"]]
    spread = record["p1_mm"]
    rows.append(f"| **mean ± sample std** | | | **{spread['mean']:.1f} ± {spread['sample_std']:.1f}** |")
    return "\n".join(rows)


def experiments_table(folder: Path = RESULTS / "experiments") -> str:
    """Runs outside the default pipeline: their metrics files, kept as the pipeline wrote them."""
    rows = ["| run | 2D input | P1 / P2 (mm, action mean) | MPJVE (mm/frame) | seeds | training (s, samples/s) | budget |",
            "|---|---|---|---|---|---|---|"]
    for path in sorted(folder.glob("*.json")):
        record = read_metrics(path)  # with its speed sibling, where there is one
        mean, training = record["seeds"]["mean"], record["training"]
        mpjve = f"{mean['mpjve']:.1f}" if mean.get("mpjve") is not None else "–"
        speed = f"{training['samples_per_s']:.0f}" if training["samples_per_s"] is not None else "– (a lookup)"
        rows.append(f"| {record['method']} | {record['input2d']} | {mean['p1']:.1f} / {mean['p2']:.1f} | {mpjve} | "
                    f"{len(record['seeds']['seeds'])} | {training['seconds']:.0f}, {speed} | "
                    f"{record['protocol']['configuration_label']}, {budget_label(record) or 'paper schedule'} |")
    return "\n".join(rows)


def detector_table(folder: Path = RESULTS / "detector", default: Path = Path("metrics/detector.json")) -> str:
    """The 2D detector: the default run's accuracy on the test subjects (``detect2d``), then each
    recipe's on a held-out training subject (``benchmarks/detector_probe.py``)."""
    rows = ["| run | scored on | crop, body | augmentation, flip test | mean / median error (px) | "
            "PCK 5 / 10 / 20 px (%) | left/right swapped (%) | training views x epochs | "
            "training (s, samples/s, threads) |", "|---|---|---|---|---|---|---|---|---|"]

    def row(name: str, where: str, summary: dict, settings: dict, record: dict, threads, crop: str,
            flip_test: bool) -> str:
        pck = summary["pck"]
        swapped = f"{summary['swapped_pct']:.0f}" if "swapped_pct" in summary else "–"
        extra = [f"{name} {settings[name]:g}" for name in ("rotation", "scale", "colour") if settings.get(name)]
        augmented = ", ".join(["flips", *extra])
        return (f"| {name} | {where} | {crop} | {augmented}, {'flip test' if flip_test else 'none'} | "
                f"{summary['mean_px']:.1f} / {summary['median_px']:.1f} | "
                f"{pck['5px']:.0f} / {pck['10px']:.0f} / {pck['20px']:.0f} | {swapped} | "
                f"{record['train_views']} x {settings['epochs']} | {record['train_seconds']:.0f}, "
                f"{record['samples_per_s']:.0f}, {threads} |")

    def crop_body(render: dict) -> str:
        """Probes before render.body (48 x 64) name their markings in their file name."""
        body = render.get("body", "marked" if render.get("markings") else "mannequin")
        outfits = ", outfits per sequence" if render.get("outfits") == "sequence" else ""
        return f"{render.get('width', 48)} x {render.get('height', 64)}, {body}{outfits}"

    if default.exists() and "test" in json.loads(default.read_text()):
        record = read_metrics(default)
        rows.append(row("default (`metrics/detector.json`)", "test subjects, every view", record["test"],
                        record.get("settings") or record["training"],
                        record["training"], record["threads"], crop_body({"body": "mannequin", **record["crop"]}),
                        record["flip_test"]))
    for path in sorted(folder.glob("*.json")):
        probe = json.loads(path.read_text())
        render = probe.get("render", {"markings": probe["name"].startswith("marked")})
        where = f"{probe['holdout']}, every 4th frame"
        for summary, flip_test in ((probe["held_out"], probe["settings"]["flip_test"]),
                                   (probe.get("held_out_other_flip_test"), not probe["settings"]["flip_test"])):
            if summary is not None:
                rows.append(row(f"`{probe['name']}`", where, summary, probe["settings"], probe["record"],
                                probe["threads"], crop_body(render), flip_test))
    return "\n".join(rows)


def temporal_table(path: Path = RESULTS / "temporal-cpu.json") -> str:
    """Training and inference samples/s of the temporal methods: our loop against the upstream style."""
    record = json.loads(path.read_text())
    rows = [f"Batch {record['batch']}, {record['machine']['threads']} threads, fp32 matmul peak "
            f"{record['matmul_gflops']:.0f} GFLOP/s; median of {record['rounds']} interleaved rounds.", "",
            "| model | loop | mode | samples/s | vs upstream style |", "|---|---|---|---|---|"]
    rows += [f"| {r['model']} | {r['loop']} | {r['mode']} | {r['samples_per_s']:.0f} | {r['speedup_vs_upstream_style']:.2f}x |"
             for r in record["results"]]
    return "\n".join(rows)


def speed_table(path: Path = RESULTS / "speed-cpu.json") -> str:
    """Every method's samples/s in our loop and an upstream-style loop, measured side by side."""
    record = json.loads(path.read_text())
    peaks = record["matmul_gflops"]
    rows = [f"{record['machine']['threads']} threads, torch {record['machine']['torch']}; large GEMM: "
            f"{peaks['fp32']:.0f} GFLOP/s fp32, {peaks['bf16']:.0f} GFLOP/s bf16; median of {record['rounds']} "
            "interleaved rounds (temporal models: their own rounds).", "",
            "| model | mode | batch | ours (samples/s) | upstream-style (samples/s) | ratio | GFLOP/s (ours) | share of fp32 peak |",
            "|---|---|---|---|---|---|---|---|"]
    results = record["results"]
    for row in (r for r in results if r["loop"] == "ours"):
        theirs = next(r for r in results if (r["model"], r["mode"], r["batch"]) == (row["model"], row["mode"], row["batch"])
                      and r["loop"] == "upstream-style")
        rate = f"{row['gflops_per_s']:.1f}" if row.get("gflops_per_s") else "–"
        share = f"{row['share_of_fp32_peak']:.0%}" if row.get("share_of_fp32_peak") else "–"
        rows.append(f"| {row['model']} | {row['mode']} | {row['batch']} | {row['samples_per_s']:,.0f} | "
                    f"{theirs['samples_per_s']:,.0f} | {row['samples_per_s'] / theirs['samples_per_s']:.2f}x | {rate} | {share} |")
    swept = {r["model"]: r["infer_samples_per_s_by_batch"] for r in results if "infer_samples_per_s_by_batch" in r}
    if swept:
        sizes = list(next(iter(swept.values())))
        rows += ["", "Our inference (`predict`, samples/s) by batch size:", "",
                 "| model | " + " | ".join(f"batch {size}" for size in sizes) + " |", "|---|" + "---|" * len(sizes)]
        rows += [f"| {model} | " + " | ".join(f"{v:,.0f}" for v in rates.values()) + " |" for model, rates in swept.items()]
    return "\n".join(rows)


def predict_table(path: Path = RESULTS / "predict-cpu.json") -> str:
    """``lifting.predict`` (benchmarks/bench_predict.py): frames per second per run through the
    tool's lifting path, then the whole command's peak memory by input length."""
    record = json.loads(path.read_text())
    rows = [f"{record['input']}; {record['machine']['threads']} thread, {record['speed_frames']:,} frames per run.", "",
            "| run | configuration | receptive field (frames) | flip test | frames/s | weights |", "|---|---|---|---|---|---|"]
    rows += [f"| {run} | {r['configuration']} | {r['receptive_field']} | {'yes' if r['flip_test'] else 'no'} | "
             f"{r['frames_per_s']:,.0f} | {r['source']} |" for run, r in record["frames_per_s"].items()]
    memory = record["peak_memory"]
    rows += ["", f"Peak memory ({memory['note']}):", "", "| run | frames | peak RSS (MB) | seconds |", "|---|---|---|---|"]
    rows += [f"| {run} | {m['frames']:,} | {m['peak_rss_mb']:.0f} | {m['seconds']:.0f} |"
             for run, measured in memory["runs"].items() for m in measured]
    return "\n".join(rows)


def robustness_table(path: Path = RESULTS / "robustness-cpu.json") -> str:
    """The robustness stage of every default run (benchmarks/robustness_cost.py): seconds, samples/s
    and what its test subsample changes, with the totals and the evaluate stage timed beside it."""
    record = json.loads(path.read_text())
    rows = [f"{record['note']}.", "",
            "| run | seeds | scored frames | CPU s | wall s | predicting, wall s | samples/s | evaluate samples/s "
            "(metrics/speed) | P1 level 0, subsample | P1 full test set | difference |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows += [f"| {r['run']} | {r['seeds']} | {r['test_frames']} | {r['cpu_s']:.0f} | {r['wall_s']:.0f} | "
             f"{r['predict_s']:.0f} | {r['samples_per_s']:,.0f} | {r['evaluate_samples_per_s_recorded']:,.0f} | "
             f"{r['p1_level0_subsample']:.1f} | {r['p1_full_test_set']:.1f} | {r['p1_difference']:+.1f} |"
             for r in record["runs"]]
    total = record["total"]
    rows.append(f"| all runs | – | – | **{total['cpu_s']:.0f}** ({total['cpu_s'] / 60:.1f} min) | {total['wall_s']:.0f} "
                f"| {total['predict_s']:.0f} | – | – | – | – | – |")
    calibration = record.get("calibration")
    if calibration:
        rows += ["", f"The evaluate stage of {calibration['run']} on the whole test set, timed right after with the "
                     f"same threads: {calibration['inference_samples_per_s_now']:,.0f} samples/s against the "
                     f"{calibration['inference_samples_per_s_recorded']:,.0f} its metrics/speed file recorded when the "
                     f"pipeline ran ({1 / calibration['slowdown']:.2f}x that rate)."]
    return "\n".join(rows)


def h36m_scale_table(path: Path = RESULTS / "h36m-scale-cpu.json") -> str:
    """Every stage at Human3.6M's full size (benchmarks/h36m_scale.py): seconds and peak memory, the
    Parquet sizes per view, the lookup floor's index choice, training samples/s against the embedded data's."""
    record = json.loads(path.read_text())
    machine = record["machine"]
    before = record.get("before", {})
    rows = [f"{record['data']['views']:,} views (synthetic, `benchmarks/h36m_synthetic.py`); {machine['cpus']} cores, "
            f"{machine['cpu_capability']}, torch {machine['torch']}. {record.get('note', '')}".rstrip(), "",
            "| stage | seconds | peak memory (MB) | before the fixes: seconds, MB |", "|---|---|---|---|"]

    def row(name: str, measured: dict, key: str) -> str:
        earlier = before.get(key)
        was = f"{earlier['seconds']:.0f}, {earlier['peak_rss_mb']:,.0f}" if earlier else "–"
        return f"| {name} | {measured['seconds']:.0f} | {measured['peak_rss_mb']:,.0f} | {was} |"

    rows += [row(name, measured, name) for name, measured in record["data"]["stages"].items()]
    knn = record.get("knn")
    if knn:
        rows += [row("train@knn-gt (build the lookup floor)", knn["build"], "knn_build"),
                 row("evaluate@knn-gt (query the whole test set)", knn["query"], "knn_query")]
    rows += [row(f"evaluate@{r['run']}-gt (whole test set)", r, f"evaluate_{r['run']}")
             for r in record.get("evaluate", {}).get("rows", [])]
    sizes = record["data"]["parquet"]
    rows += ["", "| Parquet file | MB | bytes per view |", "|---|---|---|"]
    rows += [f"| {folder}/{name} | {size['bytes'] / 1e6:,.0f} | {size['bytes_per_view']:,.1f} |"
             for folder, files in sizes.items() for name, size in files.items()]
    if knn:
        choice = knn["index_choice"]
        rows += ["", f"The lookup floor's index: {choice['queries']:,} test views against the {choice['library']:,}-pose "
                     "library, one job each:", "",
                 "| scikit-learn index | build (s) | queries/s | whole test set (min, one job) | same neighbours as brute |",
                 "|---|---|---|---|---|"]
        rows += [f"| {name} | {choice[name]['build_seconds']:.1f} | {choice[name]['queries_per_s']:,.0f} | "
                 f"{choice[name]['whole_test_set_minutes']:.1f} | {'yes' if choice['same_neighbours_as_brute'][name] else 'no'} |"
                 for name in ("brute", "kd_tree", "ball_tree")]
    speed = record.get("speed")
    if speed:
        rows += ["", f"Training samples/s ({speed['rows'][0]['threads']} thread, the default budget's batch and train "
                     "stride, the run's own data path; `fit` cut after a fixed number of steps):", "",
                 "| run | batch | steps | embedded: samples/s | full size: samples/s | full / embedded | "
                 "full size: load s, peak MB |", "|---|---|---|---|---|---|---|"]
        for embedded in (r for r in speed["rows"] if r["data"] == "embedded"):
            full = next(r for r in speed["rows"] if r["run"] == embedded["run"] and r["data"] == "full")
            rows.append(f"| {embedded['run']} | {embedded['batch_size']} | {embedded['steps']} | "
                        f"{embedded['samples_per_s']:,.0f} | {full['samples_per_s']:,.0f} | {full['full_over_embedded']:.2f} | "
                        f"{full['load_seconds']:.0f}, {full['peak_rss_mb']:,.0f} |")
    return "\n".join(rows)


def compile_table(path: Path = RESULTS / "compile-cpu.json") -> str:
    """torch.compile and the optimizer implementations (benchmarks/bench_compile.py): training samples/s,
    compile seconds and test P1 after the accuracy epochs, per method and variant; inference eager/compiled."""
    record = json.loads(path.read_text())
    rows = [f"{record['threads']} thread(s), {record['machine']['cpu_capability']}, torch {record['machine']['torch']}; "
            f"{record['steps']} timed steps after {record['warm']} warm-up steps; test P1 (every 10th test frame) "
            "after the accuracy epochs of the budget's schedule from seed 0, and eager from seed 1 for the spread.", "",
            "| method | batch | variant | samples/s | vs eager | compile s | accuracy epochs | test P1 (mm) | "
            "eager, seed 1: P1 |", "|---|---|---|---|---|---|---|---|---|"]

    def mm(value: float | None) -> str:
        return "–" if value is None else f"{value:.1f}"

    for method, row in record["methods"].items():
        for name, variant in row["variants"].items():
            compile_s = f"{max(variant['compile_seconds'], 0):.0f}" if "compile_seconds" in variant else "–"
            rows.append(f"| {method} | {row['batch_size']} | {name} | {variant['samples_per_s']:,.0f} | "
                        f"{variant['speedup']:.2f}x | {compile_s} | {row.get('accuracy_epochs', record.get('accuracy_epochs')) or '–'} | "
                        f"{mm(variant['test_p1_mm'])} | {mm(row['eager_seed1_test_p1_mm'])} |")
    rows += ["", "| method | inference eager (samples/s) | compiled | ratio |", "|---|---|---|---|"]
    rows += [f"| {method} | {r['inference_samples_per_s']['eager']:,.0f} | {r['inference_samples_per_s']['compiled']:,.0f} | "
             f"{r['inference_samples_per_s']['compiled'] / r['inference_samples_per_s']['eager']:.2f}x |"
             for method, r in record["methods"].items()]
    return "\n".join(rows)


def replace_between(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:begin -->).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{README}: markers <!-- {name}:begin --> / <!-- {name}:end --> not found")
    return pattern.sub(lambda m: f"{m.group(1)}\n{body}\n{m.group(2)}", text)


def refresh_plateaus(folder: Path = RESULTS / "convergence") -> None:
    """Recompute every record's stored plateau with the current rule (lifting/convergence.py)."""
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        plateau = convergence.plateau(record["recipes"])
        if plateau != record.get("plateau"):
            write_json({**record, "plateau": plateau}, path)


def main() -> None:
    refresh_plateaus()
    text = README.read_text()
    text = replace_between(text, "convergence", convergence_table())
    text = replace_between(text, "lr-search", lr_search_table())
    text = replace_between(text, "pipeline", pipeline_table())
    text = replace_between(text, "pipeline-reference", machine_ratio_table())
    text = replace_between(text, "rie-spread", rie_spread_table())
    text = replace_between(text, "experiments", experiments_table())
    text = replace_between(text, "experiments-earlier-detector", experiments_table(RESULTS / "experiments" / "earlier-detector"))
    text = replace_between(text, "detector", detector_table())
    text = replace_between(text, "temporal", temporal_table())
    text = replace_between(text, "predict", predict_table())
    text = replace_between(text, "robustness", robustness_table())
    for name, table, path in (("h36m-scale", h36m_scale_table, "h36m-scale-cpu.json"),
                              ("compile", compile_table, "compile-cpu.json")):
        if (RESULTS / path).exists():
            text = replace_between(text, name, table())
    if (RESULTS / "speed-cpu.json").exists():
        text = replace_between(text, "speed", speed_table())
    README.write_text(text)


if __name__ == "__main__":
    main()
