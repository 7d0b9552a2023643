"""lsnb: calibrated language models and label smoothing.

Modules: calibration (metrics, intervals, reliability diagrams, temperature scaling), theory (caps of label
smoothing, the d/V bounds), kernel (label-smoothed linear cross-entropy in Triton, no logits materialised),
data / scoring / evaluate (multiple-choice tasks, confidence methods, `lsnb eval`), lm_eval and report (lm-eval logs
in, HTML reports out), models (loading, GGUF, output heads), sft / integrations / cft (fine-tuning with the fused
loss, `patch(model)` for a stock Trainer or TRL, calibration-aware fine-tuning), experiments (the studies).
Command line: `lsnb --help`. Docs: the notebooks in nbs/ (rendered by tools/build_docs.py).
"""
__version__ = "0.1.0"
