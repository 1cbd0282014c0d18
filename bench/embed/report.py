#!/usr/bin/env python3
"""report.py - the final JSON line of bench/run embed, from the per-process
lines bench/embed.sh collected (one per model, engine and round; ONNX
Runtime's have engine "onnxruntime").  Standard library only.

Figures are medians over rounds (min_cosine: the minimum).  Ratios are
ours / ONNX Runtime of those medians, at the same batch size.  The top-level
figures are the default model's, with the engine engram picks by default
(AUTO) when it was measured, else the fastest measured one; `batched_texts_s`
is the better of its batch sizes, `batched_batch` says which, and
`ratio_to_onnxruntime` compares it with ONNX Runtime at that batch size.

Usage: report.py LINES_FILE key=value...   (extra top-level keys: default_model,
auto_engine, runs, texts, ...; numbers stay numbers)
"""
import json
import statistics
import sys

NUMERIC = ("load_ms", "single_texts_s", "long_texts_s", "peak_rss_mb", "mean_cosine")


def med(xs, digits=2):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), digits) if xs else None


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def main(argv):
    lines = [json.loads(l) for l in open(argv[1]) if l.strip().startswith("{")]
    extra = {}
    for kv in argv[2:]:
        k, v = kv.split("=", 1)
        try:
            extra[k] = json.loads(v)
        except ValueError:
            extra[k] = v
    groups = {}
    for o in lines:
        if o.get("unsupported"):
            continue
        groups.setdefault(o["model"], {}).setdefault(o["engine"], []).append(o)

    models = {}
    for model, engines in groups.items():
        out = {}
        for engine, runs in engines.items():
            keys = [k for k in runs[0] if k.startswith("batch") and k.endswith("_texts_s")] + list(NUMERIC)
            fig = {k: med([r.get(k) for r in runs], 9 if "cosine" in k else 2) for k in keys if k in runs[0]}
            if "min_cosine" in runs[0]:
                fig["min_cosine"] = min(r["min_cosine"] for r in runs)
            for k in ("short_avg_tokens", "long_avg_tokens", "long_truncated", "version", "max_tokens"):
                if k in runs[0]:
                    fig[k] = runs[0][k]
            fig["rounds"] = len(runs)
            out[engine] = fig
        ort = out.get("onnxruntime")
        if ort:
            for engine, fig in out.items():
                if engine == "onnxruntime":
                    continue
                for k in list(fig):
                    if k.endswith("_texts_s"):
                        fig["ratio_" + k[:-len("_texts_s")]] = ratio(fig[k], ort.get(k))
        models[model] = out

    res = {"bench": "embed"}
    default = extra.get("default_model")
    mine = models.get(default) or (next(iter(models.values())) if models else {})
    ours = {e: f for e, f in mine.items() if e != "onnxruntime"}

    def batched(fig):
        best = max(((fig.get(k), int(k[5:-8])) for k in fig if k.startswith("batch") and k.endswith("_texts_s")),
                   default=(None, None))
        return best

    engine = extra.get("auto_engine")
    if engine not in ours and ours:
        engine = max(ours, key=lambda e: batched(ours[e])[0] or 0)
    res["model"] = default
    if engine:
        fig = ours[engine]
        rate, b = batched(fig)
        ort = mine.get("onnxruntime", {})
        res.update({
            "engine": engine,
            "threads": 1,
            "batched_texts_s": rate,
            "batched_batch": b,
            "ratio_to_onnxruntime": ratio(rate, ort.get("batch%d_texts_s" % b)),
            "min_cosine": fig.get("min_cosine"),
            "single_texts_s": fig.get("single_texts_s"),
            "single_ratio_to_onnxruntime": ratio(fig.get("single_texts_s"), ort.get("single_texts_s")),
            "load_ms": fig.get("load_ms"),
            "peak_rss_mb": fig.get("peak_rss_mb"),
            "ort_batched_texts_s": ort.get("batch%d_texts_s" % b),
            "ort_single_texts_s": ort.get("single_texts_s"),
        })
    minilm = models.get("all-MiniLM-L6-v2", {})
    mo = {e: f for e, f in minilm.items() if e != "onnxruntime"}
    if mo:
        res["minilm_batched_texts_s"] = max(batched(f)[0] or 0 for f in mo.values())
    res.update(extra)
    res["targets"] = {"ratio_to_onnxruntime": 1.0, "min_cosine": 0.9999, "minilm_batched_texts_s": 300}
    res["models"] = models
    print(json.dumps(res, separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv)
