"""Search reports: a markdown table (accuracy / size / predicted VPU latency / measured fps) and a PNG.

Rows are dicts with at least `name` and any of: the task metric (e.g. `top1`), `params`, `macs`,
`lat_VPU_2_0_ms`, `lat_VPU_2_7_ms`, `fps_openvino_cpu`, `fps_onnxruntime`, `target_ms`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

COLUMNS = [  # (key, header, format)
    ("name", "model", "{}"),
    ("target_ms", "target ms (VPU 2.0)", "{:.3f}"),
    ("top1", "top-1 %", "{:.2f}"),
    ("psnr", "PSNR dB", "{:.2f}"),
    ("params", "params", "{:,}"),
    ("macs", "MACs", "{:,}"),
    ("lat_VPU_2_0_ms", "VPU 2.0 ms", "{:.4f}"),
    ("lat_VPU_2_7_ms", "VPU 2.7 ms", "{:.4f}"),
    ("fps_openvino_cpu", "OpenVINO CPU fps", "{:.0f}"),
    ("fps_onnxruntime", "onnxruntime fps", "{:.0f}"),
]


def markdown_table(rows: list[dict]) -> str:
    cols = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    lines = ["| " + " | ".join(h for _, h, _ in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = [fmt.format(r[k]) if r.get(k) is not None else "-" for k, _, fmt in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def decision_table(record: dict, block_names: list, choice_names: list) -> str:
    """The search's final decisions (one epoch record of the search log): per block the derived candidate,
    its probability and, for factorized parameters, each choice's distribution (e.g. 'k1=3 0.81')."""
    lines = ["| block | derived | p | choices |", "|---|---|---|---|"]
    factors = record.get("factors") or [None] * len(block_names)
    for b, (name, fac) in enumerate(zip(block_names, factors)):
        j = record["argmax"][b]
        parts = []
        if fac:
            groups: dict = {}
            for key, theta in fac.items():
                groups.setdefault(key.split("=", 1)[0] if "=" in key else key, []).append((key, theta))
            for group, values in groups.items():
                if len(values) == 1 and "=" not in values[0][0]:
                    parts.append(f"{group} logit {values[0][1]:+.2f}")
                    continue
                top = max(t for _, t in values)
                z = sum(math.exp(t - top) for _, t in values)
                parts.append(" ".join(f"{k} {math.exp(t - top) / z:.2f}" for k, t in values))
        lines.append(f"| {name} | {choice_names[b][j]} | {record['probs'][b][j]:.2f} | {'; '.join(parts) or '-'} |")
    return "\n".join(lines)


def comparison_lines(searched: dict, baseline: dict, metric: str = "top1") -> list[str]:
    """Plain-language ratios of a searched net against the baseline, with the acceptance goals."""
    out = []
    if searched.get(metric) is not None and baseline.get(metric) is not None:
        d = searched[metric] - baseline[metric]
        out.append(f"- {metric}: {searched[metric]:.2f} vs {baseline[metric]:.2f} ({d:+.2f} points; goal: >= -0.3)")
    for key, label in (("lat_VPU_2_0_ms", "predicted VPU 2.0 latency"), ("lat_VPU_2_7_ms", "predicted VPU 2.7 latency")):
        if searched.get(key) and baseline.get(key):
            out.append(f"- {label}: {baseline[key] / searched[key]:.2f}x lower"
                       + (" (goal: >= 1.3x)" if "2_0" in key else ""))
    for key, label in (("fps_openvino_cpu", "OpenVINO CPU fps"), ("fps_onnxruntime", "onnxruntime fps")):
        if searched.get(key) and baseline.get(key):
            out.append(f"- {label}: {searched[key] / baseline[key]:.2f}x higher"
                       + (" (goal: >= 1.3x)" if "openvino" in key else ""))
    return out


def plot(rows: list[dict], path: str | Path, history: list | None = None, metric: str = "top1",
         latency_key: str = "lat_VPU_2_0_ms") -> Path:
    """Accuracy vs predicted latency (whitepaper Fig. 10 style) and, if given, E[lat] over the search."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_panels = 2 if history else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(6 * n_panels, 4.5), squeeze=False)
    ax = axes[0][0]
    searched = [r for r in rows if r.get(latency_key) is not None and r.get(metric) is not None
                and not r.get("is_baseline")]
    base = [r for r in rows if r.get(latency_key) is not None and r.get(metric) is not None and r.get("is_baseline")]
    if searched:
        pts = sorted(searched, key=lambda r: r[latency_key])
        ax.plot([r[latency_key] for r in pts], [r[metric] for r in pts], "o-", color="tab:blue", label="searched")
        for r in pts:
            ax.annotate(r["name"], (r[latency_key], r[metric]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for r in base:
        ax.plot(r[latency_key], r[metric], "s", color="tab:red", label=r["name"])
    ax.set_xlabel(f"predicted latency ({latency_key.replace('lat_', '').replace('_ms', '')}) [ms]")
    ax.set_ylabel(metric)
    ax.set_title("accuracy vs predicted latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if history:
        ax2 = axes[0][1]
        ax2.plot([h["epoch"] for h in history], [h["expected_latency_ms"] for h in history], "o-", label="E[lat]")
        ax2.plot([h["epoch"] for h in history], [h["derived_latency_ms"] for h in history], "s--", label="argmax net")
        targets = sorted({r["target_ms"] for r in rows if r.get("target_ms")})
        for t in targets:
            ax2.axhline(t, color="gray", ls=":", lw=1)
        if targets:
            ax2.plot([], [], color="gray", ls=":", label="target")
        ax2.set_xlabel("search epoch")
        ax2.set_ylabel("latency [ms]")
        ax2.set_title("latency during the search")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(out_dir: str | Path, rows: list[dict], title: str = "vpunas search report",
                 notes: list[str] | None = None, history: list | None = None, metric: str = "top1") -> Path:
    """Write report.md, report.png and report.json into out_dir; returns the markdown path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot(rows, out_dir / "report.png", history=history, metric=metric)
    lines = [f"# {title}", "", markdown_table(rows), ""]
    baseline = next((r for r in rows if r.get("is_baseline")), None)
    if baseline:
        for r in rows:
            if r is not baseline and not r.get("is_baseline"):
                lines += [f"**{r['name']} vs {baseline['name']}**", ""] + comparison_lines(r, baseline, metric) + [""]
    archs = [r for r in rows if r.get("blocks")]
    if archs:
        lines += ["## Architectures (block strings)", ""] + [f"- {r['name']}: `{r['blocks']}`" for r in archs] + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += [f"![accuracy vs latency]({png.name})", ""]
    md = out_dir / "report.md"
    md.write_text("\n".join(lines))
    (out_dir / "report.json").write_text(json.dumps({"rows": rows, "notes": notes or []}, indent=1))
    return md
