#!/usr/bin/env python3
"""ort_embed.py - the reference side of bench/run embed: ONNX Runtime on the
same fp32 model, one thread, as its users run it.

Tokenizes with the Hugging Face `tokenizers` library (the model's own
tokenizer.json, cut at the model's limit, padded to the longest text of each
batch), runs the session (intra_op_num_threads=1, inter_op_num_threads=1,
sequential execution), pools (mean over the attention mask, or [CLS]) and
L2-normalises, exactly what engram's encoder returns.  Every timed figure
covers texts in, vectors out (tokenizing included), as on engram's side.

One measured pass after one unmeasured warm-up batch:
  single:    the first --single short texts, one per call
  batch B:   all short texts, B per call, for each B in --batches
  long:      the long texts, --long-batch per call
Writes the vectors of the short texts (from the first batch size) then of the
long texts as float32 to --vectors, and prints one JSON line.

Dev tool only (bench/.venv, made by bench/embed/venv.sh); never a
dependency of engram.
"""
import argparse
import json
import os
import resource
import time

# One thread everywhere: the tokenizer's own thread pool too.
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import onnxruntime as ort
import tokenizers
from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--pooling", choices=["mean", "cls"], required=True)
    ap.add_argument("--max-tokens", type=int, required=True)
    ap.add_argument("--short", required=True)
    ap.add_argument("--long", required=True)
    ap.add_argument("--single", type=int, default=128)
    ap.add_argument("--batches", default="32,100")
    ap.add_argument("--long-batch", type=int, default=8)
    ap.add_argument("--vectors")
    a = ap.parse_args()

    short = [l.rstrip("\n") for l in open(a.short, encoding="utf-8")]
    long_ = [l.rstrip("\n") for l in open(a.long, encoding="utf-8")]
    batches = [int(b) for b in a.batches.split(",") if b]

    t0 = time.perf_counter()
    tok = Tokenizer.from_file(a.tokenizer)
    tok.enable_truncation(max_length=a.max_tokens)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest of each batch
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    names = {i.name for i in sess.get_inputs()}

    def embed(texts):
        enc = tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        h = sess.run(None, feed)[0]
        if a.pooling == "cls":
            v = h[:, 0, :]
        else:
            m = mask[:, :, None].astype(np.float32)
            v = (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def rate(texts, per_call):
        out = []
        t = time.perf_counter()
        for i in range(0, len(texts), per_call):
            out.append(embed(texts[i:i + per_call]))
        return len(texts) / (time.perf_counter() - t), np.concatenate(out)

    embed(short[:32])  # warm-up: first-run allocations, page faults
    res = {"side": "onnxruntime", "model": a.model, "engine": "onnxruntime", "threads": 1,
           "version": "onnxruntime/%s tokenizers/%s" % (ort.__version__, tokenizers.__version__),
           "load_ms": round(load_ms, 1)}
    res["short_avg_tokens"] = round(
        sum(sum(e.attention_mask) for e in tok.encode_batch(short)) / len(short), 1)
    res["single_texts_s"] = round(rate(short[:a.single], 1)[0], 1)
    vecs = None
    for b in batches:
        r, v = rate(short, b)
        res["batch%d_texts_s" % b] = round(r, 1)
        if vecs is None:
            vecs = v
    r, lv = rate(long_, a.long_batch)
    res["long_texts_s"] = round(r, 2)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    if a.vectors:
        np.concatenate([vecs, lv]).astype(np.float32).tofile(a.vectors)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
