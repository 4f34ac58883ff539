"""Exporting the text tower for serving without torch: pruned vocabulary, ONNX, INT8.

* :func:`pruned_vocabulary`: the MiniLM token ids fashion text needs: the special tokens, every single
  character (so no word is lost whole to ``[UNK]``: it falls back to pieces), the most common English
  word pieces (MiniLM's vocabulary lists them by frequency from id 1996), and every token of the given
  texts.
* :func:`pruned_tokenizer_json`: MiniLM's ``tokenizer.json`` with its vocabulary remapped to the kept ids.
* :func:`export_text_onnx`: one ONNX graph ``input_ids, attention_mask -> embedding`` (n, 256): the
  transformer with the pruned token table, mean pooling, L2 norm, the projection, L2 norm. Opset 17,
  dynamic batch and sequence.
* :func:`quantize_text_onnx`: INT8 dynamic quantisation of the MatMuls (and the token table's Gather).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.training.text import MAX_TOKENS, minilm_dir

__all__ = ["export_text_onnx", "pruned_tokenizer_json", "pruned_vocabulary", "quantize_text_onnx"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_FIRST_WORD_ID = 1996  # MiniLM (BERT uncased): "the", "of", "and", ... from here on, by frequency
_FIRST_CHAR_ID = 999  # "!" ... single characters up to _FIRST_WORD_ID - 1


def _base_tokenizer_json() -> dict[str, Any]:
    return json.loads((minilm_dir() / "tokenizer.json").read_text(encoding="utf-8"))


def pruned_vocabulary(texts: Iterable[str], common_words: int = 6000) -> list[int]:
    """Sorted original token ids to keep (see the module docstring)."""
    from tokenizers import Tokenizer

    spec = _base_tokenizer_json()
    vocab: dict[str, int] = spec["model"]["vocab"]
    keep = {vocab[t] for t in SPECIAL_TOKENS}
    keep.update(range(_FIRST_CHAR_ID, _FIRST_WORD_ID))
    keep.update(i for t, i in vocab.items() if t.startswith("##") and len(t) == 3)
    keep.update(range(_FIRST_WORD_ID, min(len(vocab), _FIRST_WORD_ID + common_words)))
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.no_truncation()
    tok.no_padding()
    texts = list(texts)
    for start in range(0, len(texts), 4096):
        for enc in tok.encode_batch(texts[start : start + 4096], add_special_tokens=False):
            keep.update(enc.ids)
    return sorted(keep)


def pruned_tokenizer_json(kept: Sequence[int], max_tokens: int = MAX_TOKENS) -> str:
    """MiniLM's tokenizer with only the ``kept`` original ids, renumbered 0..len(kept)-1 in order;
    truncation at ``max_tokens`` tokens, no padding (the encoder pads)."""
    spec = _base_tokenizer_json()
    vocab: dict[str, int] = spec["model"]["vocab"]
    new_id = {old: new for new, old in enumerate(kept)}
    spec["model"]["vocab"] = {t: new_id[i] for t, i in sorted(vocab.items(), key=lambda kv: kv[1]) if i in new_id}
    for added in spec["added_tokens"]:
        added["id"] = new_id[added["id"]]
    for special in spec["post_processor"]["special_tokens"].values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    spec["truncation"] = {"max_length": max_tokens, "strategy": "LongestFirst", "stride": 0, "direction": "Right"}
    spec["padding"] = None
    return json.dumps(spec, ensure_ascii=False, indent=None)


class _Tower:  # built lazily: torch is imported only when exporting
    @staticmethod
    def build(kept: Sequence[int], projection: dict[str, np.ndarray]) -> Any:
        import torch
        from transformers import AutoModel

        bert = AutoModel.from_pretrained(minilm_dir()).eval()
        old = bert.embeddings.word_embeddings.weight.detach()
        table = torch.nn.Embedding(len(kept), old.shape[1], padding_idx=0)
        table.weight.data = old[torch.as_tensor(list(kept))].clone()
        bert.embeddings.word_embeddings = table
        bert.config.vocab_size = len(kept)

        class Tower(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert
                self.w1 = torch.nn.Parameter(torch.from_numpy(projection["w1"]))
                self.b1 = torch.nn.Parameter(torch.from_numpy(projection["b1"]))
                self.two = "w2" in projection
                if self.two:
                    self.w2 = torch.nn.Parameter(torch.from_numpy(projection["w2"]))
                    self.b2 = torch.nn.Parameter(torch.from_numpy(projection["b2"]))

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
                hidden = self.bert(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                h = pooled @ self.w1 + self.b1
                if self.two:
                    h = torch.nn.functional.gelu(h) @ self.w2 + self.b2
                return torch.nn.functional.normalize(h, dim=-1)

        return Tower().eval()


def export_text_onnx(kept: Sequence[int], projection: dict[str, np.ndarray], path: Path) -> Path:
    """Write the float ONNX text tower (see the module docstring) to ``path``."""
    import torch

    tower = _Tower.build(kept, projection)
    ids = torch.tensor([[2, 5, 7, 3], [2, 9, 3, 0]], dtype=torch.int64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        torch.onnx.export(
            tower,
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "n", 1: "seq"}, "attention_mask": {0: "n", 1: "seq"}, "embedding": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    return path


def quantize_text_onnx(src: Path, dst: Path, gather: bool = True) -> Path:
    """INT8 dynamic per-channel quantisation of ``src`` into ``dst``: the MatMuls, and the token table when
    ``gather`` (per-tensor scales cost 5 points of title R@10; per-channel keeps cosine 0.99 to float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = ["MatMul", "Gather"] if gather else ["MatMul"]
    quantize_dynamic(str(src), str(dst), op_types_to_quantize=ops, weight_type=QuantType.QInt8, per_channel=True)
    return dst


# --- the whole run ----------------------------------------------------------------------------------
def _log(msg: str) -> None:
    print(msg, flush=True)


def run(
    out_dir: Path,
    work_dir: Path,
    cache_root: Path,
    datasets: str | None = None,
    hidden: int = 0,
    epochs: int = 30,
    gather: bool = True,
) -> dict[str, Any]:
    """Train the projection, export the pruned (INT8) tower to ``out_dir``, measure torch vs ONNX."""
    import time

    from lookalike.evaluate.datasets import catalog_gallery, resolve_datasets_root
    from lookalike.evaluate.text_task import run_text_task, test_split, test_split_image_vectors
    from lookalike.text import TextEncoder
    from lookalike.training.phrases import fashion_vocabulary
    from lookalike.training.text import (
        ProjectionConfig,
        SentenceEncoder,
        projection_forward,
        train_projection,
        training_texts,
    )

    root = resolve_datasets_root(datasets)
    gallery, _ = catalog_gallery(root)
    image_vecs = test_split_image_vectors(gallery, cache_root)
    by_id = {pid: i for i, pid in enumerate(gallery.ids)}
    import csv

    with (root / "fashion-product-images-224" / "labels.csv").open(newline="", encoding="utf-8-sig") as fh:
        all_rows = list(csv.DictReader(fh))
    train_rows = [r for r in all_rows if int(r["id"]) % 5 != 0]
    data = training_texts(train_rows)
    sentences = SentenceEncoder(work_dir / "sentences")
    t0 = time.perf_counter()
    text_vecs = sentences.encode(list(data.texts))
    _log(f"{len(data.texts)} training texts ({len(set(data.texts))} distinct) in {time.perf_counter() - t0:.0f}s")
    train_image = image_vecs[[by_id[r["id"]] for r in train_rows]]
    cfg = ProjectionConfig(hidden=hidden, epochs=epochs)
    t0 = time.perf_counter()
    weights = train_projection(text_vecs, train_image, data, train_rows, cfg, log=_log)
    train_s = time.perf_counter() - t0
    np.savez(work_dir / "projection.npz", **weights)

    test_rows, test_images = test_split(root)
    test_vecs = image_vecs[[by_id[i] for i in test_images.ids]]
    results: dict[str, Any] = {"train_seconds": round(train_s, 1), "config": cfg.__dict__}
    results["torch float"] = run_text_task(
        lambda t: projection_forward(weights, sentences.encode(t)), test_rows, test_vecs
    )
    _log(f"torch float: {results['torch float']}")

    kept = pruned_vocabulary([*data.texts, *fashion_vocabulary()])
    out_dir.mkdir(parents=True, exist_ok=True)
    tok_path = out_dir / "lookalike-text.tokenizer.json"
    tok_path.write_text(pruned_tokenizer_json(kept), encoding="utf-8")
    config = {
        "name": "lookalike-text",
        "dim": int(weights["b1" if "w2" not in weights else "b2"].shape[0]),
        "image_model": "lookalike-fashion",
        "base": "sentence-transformers/all-MiniLM-L6-v2 (mean pooling, L2 norm), frozen",
        "projection": "linear" if not hidden else f"MLP 384-{hidden}-256 (GELU)",
        "vocabulary": len(kept),
        "max_tokens": MAX_TOKENS,
        "temperature": float(np.exp(-weights["logit_scale"])),
        "quantized": "INT8 dynamic per-channel (MatMul" + (", Gather)" if gather else ")"),
    }
    (out_dir / "lookalike-text.config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    float_path = export_text_onnx(kept, weights, work_dir / "lookalike-text.float.onnx")
    float_enc = TextEncoder(float_path, tok_path, out_dir / "lookalike-text.config.json")
    results["onnx pruned float"] = run_text_task(float_enc.encode, test_rows, test_vecs)
    _log(f"onnx pruned float: {results['onnx pruned float']}")
    model_path = quantize_text_onnx(float_path, out_dir / "lookalike-text.onnx", gather=gather)
    enc = TextEncoder(model_path)
    results["onnx pruned int8"] = run_text_task(enc.encode, test_rows, test_vecs)
    _log(f"onnx pruned int8: {results['onnx pruned int8']}")
    probe = ["navy blue shirt for men", "white sneakers", "black leather wallet", "red dress"]
    a, b = float_enc.encode(probe), enc.encode(probe)
    results["int8 vs float cosine (probe phrases)"] = float((a * b).sum(1).min())
    times = []
    enc.encode(["warm up"])
    for i in range(200):
        t = time.perf_counter()
        enc.encode([probe[i % 4]])
        times.append(time.perf_counter() - t)
    results["encode p50 ms (one phrase, 2 threads)"] = round(1000 * float(np.median(times)), 2)
    results["encode p90 ms"] = round(1000 * float(np.percentile(times, 90)), 2)
    results["sizes MB"] = {p.name: round(p.stat().st_size / 1e6, 2) for p in sorted(out_dir.glob("lookalike-text*"))}
    (work_dir / "results.json").write_text(json.dumps(results, indent=2))
    _log(json.dumps(results, indent=2))
    return results


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - the training run
    """``python -m lookalike.training.text_export [--hidden N] [--epochs N] OUT_DIR WORK_DIR CACHE_ROOT``."""
    import argparse

    ap = argparse.ArgumentParser(description="train and export the lookalike text tower")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("work_dir", type=Path)
    ap.add_argument("cache_root", type=Path, help="evaluation embedding cache (image vectors)")
    ap.add_argument("--datasets", default=None)
    ap.add_argument("--hidden", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--no-gather", action="store_true", help="keep the token table in float")
    a = ap.parse_args(argv)
    a.work_dir.mkdir(parents=True, exist_ok=True)
    run(a.out_dir, a.work_dir, a.cache_root, a.datasets, a.hidden, a.epochs, not a.no_gather)


if __name__ == "__main__":  # pragma: no cover
    main()
