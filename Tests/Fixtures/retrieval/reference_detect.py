#!/usr/bin/env python3
"""Independent reference for Headlight's retrieval-head detection (Wu et al. 2024).

Runs the original rule of nightdessert/Retrieval_Head `retrieval_head_detection.py` with
Hugging Face transformers on the *same prompts* Headlight builds (token ids and needle spans
exported by `headlight retrieval-heads --export-trials`, so tokenization cannot confound the
comparison), and writes per-trial and per-head scores as JSON.

The rule, as in the original (`decode`, `retrieval_calculate`, `retrieval_head_accumulate`):
  - prefill input_ids[:, :-1] with use_cache (no attentions kept);
  - greedy decoding from the last prompt token, at most max_new_tokens steps; each step feeds
    one token with output_attentions=True; the generated token is argmax of the logits;
  - per layer and query head: i = topk(1) of that step's attention row (torch.topk: the lowest
    index on ties); if span_start <= i < span_end and prompt_ids[i] == generated token, the
    head's trial score += 1 / (span_end - span_start);
  - stop after a token whose text contains a line feed (the original tests for the
    SentencePiece piece '<0x0A>'; byte-level BPE vocabularies have many newline tokens) or an
    end-of-generation token (the original hard-codes id 144); the stopping token is scored;
  - response = tokenizer.decode(generated, skip_special_tokens=True).strip();
    ROUGE-1 recall (rouge_score, use_stemmer=True) x 100 > 50: the trial counts;
  - head score = mean of the trial scores over counted trials (trials whose span was not
    located score nothing and are not counted, as Headlight does; the original would count
    them with zeros when answered correctly).

Model: the GGUF file loaded by transformers (dequantized to float32), eager attention, float32,
CPU, `--threads` threads.

Usage:
  headlight retrieval-heads --probes probes/niah/default.json --lengths 500,1000 \\
      --export-trials /tmp/trials.json
  python3 Tests/Fixtures/retrieval/reference_detect.py --trials /tmp/trials.json \\
      --out Tests/Fixtures/retrieval/reference_smollm2.json
  # timing of the default sweep, or a measured subset of it:
  python3 Tests/Fixtures/retrieval/reference_detect.py --trials default_trials.json --out /tmp/ref.json \\
      --only 0,19,39,59 --no-fixture

With --fixture-prompts (default on) the exported prompts are embedded in the output, making it
the self-contained fixture read by Tests/AnalysisTests/RetrievalHeads/ReferenceAgreementRetrievalTests.swift.
Requires torch, transformers (with gguf), rouge_score, numpy.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch


def default_model():
    if os.environ.get("HEADLIGHT_MODEL"):
        return os.environ["HEADLIGHT_MODEL"]
    cache = os.environ.get("HEADLIGHT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "headlight")
    return os.path.join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", required=True, help="JSON written by headlight retrieval-heads --export-trials")
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help="comma-separated trial indices to run (timing subsets)")
    ap.add_argument("--no-fixture", action="store_true", help="do not embed the prompts in the output")
    a = ap.parse_args()

    import transformers
    from rouge_score import rouge_scorer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(a.threads)
    spec = json.load(open(a.trials))
    trials = spec["trials"]
    if a.only:
        keep = {int(x) for x in a.only.split(",")}
        trials = [t for t in trials if t["trial_index"] in keep]

    d, f = os.path.split(os.path.abspath(a.model))
    t_load = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    load_seconds = time.perf_counter() - t_load
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads

    # Stop tokens: text containing "\n" (decoded by the HF tokenizer), or EOS / Headlight's EOG ids.
    vocab = model.config.vocab_size
    newline = np.zeros(vocab, dtype=bool)
    for i in range(vocab):
        newline[i] = "\n" in tok.decode([i])
    hl_newline = set(spec.get("newline_ids", []))
    if hl_newline and hl_newline != set(np.nonzero(newline)[0].tolist()):
        diff = hl_newline.symmetric_difference(set(np.nonzero(newline)[0].tolist()))
        print(f"note: newline token sets differ on {len(diff)} ids: {sorted(diff)[:10]}", file=sys.stderr)
    eog = set(spec.get("eog_ids", []))
    if tok.eos_token_id is not None:
        eog.add(int(tok.eos_token_id))

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    max_new = int(spec["max_new_tokens"])
    out_trials = []
    t_all = time.perf_counter()
    for n, t in enumerate(trials):
        t0 = time.perf_counter()
        prompt = torch.tensor([t["prompt_ids"]], dtype=torch.long)
        span = t.get("span")
        s, e = (span[0], span[1]) if span else (-1, -1)
        score = np.zeros((L, H), dtype=np.float64)
        output = []
        with torch.no_grad():
            q = model(input_ids=prompt[:, :-1], use_cache=True, return_dict=True)
            past = q.past_key_values
            inp = prompt[0, -1]
            for _ in range(max_new):
                o = model(input_ids=inp.view(1, 1), past_key_values=past, use_cache=True,
                          output_attentions=True, return_dict=True)
                past = o.past_key_values
                inp = o.logits[0, -1].argmax()
                w = int(inp.item())
                output.append(w)
                # [L, H, S]: this step's row of every layer and query head.
                rows = torch.stack([a_[0, :, -1, :] for a_ in o.attentions])
                idx = rows.topk(1, dim=-1).indices[..., 0].numpy()
                if s >= 0:
                    hit = (idx >= s) & (idx < e)
                    for l, h in zip(*np.nonzero(hit)):
                        i = int(idx[l, h])
                        if i < len(t["prompt_ids"]) and t["prompt_ids"][i] == w:
                            score[l, h] += 1 / (e - s)
                if newline[w] or w in eog:
                    break
        response = tok.decode(output, skip_special_tokens=True).strip()
        rouge = scorer.score(t["real_needle"], response)["rouge1"].recall * 100
        success = rouge > spec.get("success_threshold", 50.0)
        dt = time.perf_counter() - t0
        out_trials.append({
            "trial_index": t["trial_index"], "needle_id": t["needle_id"], "length": t["length"],
            "depth": t["depth"], "span": span, "response": response, "generated": output,
            "rouge": rouge, "success": bool(success), "counted": bool(success and span is not None),
            "head_scores": score.tolist(), "seconds": dt,
        })
        print(f"[{n + 1}/{len(trials)}] {t['needle_id']} len {t['length']} depth {t['depth']}: "
              f"rouge {rouge:.1f}, {len(output)} tokens, {dt:.1f} s", file=sys.stderr)
    total = time.perf_counter() - t_all

    counted = [np.array(x["head_scores"]) for x in out_trials if x["counted"]]
    scores = np.mean(counted, axis=0) if counted else np.zeros((L, H))
    result = {
        "format": "headlight-retrieval-reference",
        "model_file": os.path.basename(a.model),
        "engine": f"transformers {transformers.__version__}, torch {torch.__version__}, float32, eager attention, "
                  f"{a.threads} threads, {platform.processor() or platform.machine()}",
        "n_layers": L, "n_heads": H, "max_new_tokens": max_new,
        "counted": len(counted), "scores": scores.tolist(),
        "seconds_total": total, "load_seconds": load_seconds,
        "trials": out_trials,
    }
    if not a.no_fixture:
        result["prompts"] = {str(t["trial_index"]): t["prompt_ids"] for t in trials}
        result["suite"] = spec.get("suite")
    with open(a.out, "w") as fh:
        json.dump(result, fh, separators=(",", ":"))
    print(f"{len(out_trials)} trials in {total:.1f} s ({len(counted)} counted); wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
