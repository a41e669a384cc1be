"""Trains the EDSR3 baseline exactly as vpunas.sr.run_sr does (recipe, seeds, patches), so that
benchmarks/search_sr.py --resume with the same --train-epochs 10 --batch-size 16 --lr 5e-4 --optimizer adam
--train-steps STEPS --patch PATCH reuses it instead of retraining it in every run.

    python train_edsr3_baseline.py OUT_DIR PATCH STEPS_PER_EPOCH     # e.g. runs/sr3 32 400
"""
import json, sys, torch
from dataclasses import asdict
from pathlib import Path
from vpunas.sr import SRTask, SRCentreCrops
from vpunas.data.sr import SRPatchDataset, load_sr_split
from vpunas.spaces.edsr import edsr3_baseline, EdsrNet
from vpunas.search import TrainConfig, train_network
from vpunas.export import save_model
torch.set_num_threads(2)
out = Path(sys.argv[1]); patch = int(sys.argv[2])
cfg = TrainConfig(epochs=10, batch_size=16, lr=5e-4, weight_decay=0.0, max_steps_per_epoch=int(sys.argv[3]), optimizer="adam")
train_pairs, eval_pairs = load_sr_split(2, None)
retrain_set = SRPatchDataset(train_pairs, 2, patch, 1_000_000, seed=cfg.seed + 104729)
arch = edsr3_baseline(2); a = arch.to_dict((360, 640))
torch.manual_seed(cfg.seed)
model = EdsrNet(arch)
trained = train_network(model, SRTask(2), retrain_set, SRCentreCrops(eval_pairs, 2), cfg, desc="retrain EDSR3-baseline")
save_model(model, a, out / "models", "EDSR3-baseline")
(out / "models" / "EDSR3-baseline.train.json").write_text(json.dumps({"train_cfg": asdict(cfg), "history": trained["history"]}, indent=1))
print(trained["history"])
