#!/usr/bin/python3
"""Reference numbers for the trainer's tests, from independent implementations.

Run with Debian's python3 (python3-sklearn 1.2.1, python3-torch 1.13):

    cd trainer/testdata && /usr/bin/python3 make_fixtures.py

It writes:
  iris.csv                         scikit-learn's bundled iris data, species named
  pca.csv, fixtures_sklearn.json   PCA explained-variance ratios, scalers,
                                   classification and regression metrics
  fixtures_torch.json              losses and their gradients, Adam/SGD
                                   trajectories, learning-rate schedules
and checks two files written by the Go tests with -update
(go test ./trainer -run 'SafetensorsGolden|SavedModelGolden' -update):
golden.safetensors, parsed per the safetensors spec and read with
torch.frombuffer (Debian has no python3-safetensors package), and
iris_model/, a trained model loaded into torch.nn.Linear layers whose
predictions must match Go's.
"""
import csv
import json
import math
import struct

import numpy as np
import torch
from sklearn import decomposition, metrics, preprocessing


def iris():
    from sklearn.datasets import load_iris
    d = load_iris()
    with open("iris.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])
        for x, y in zip(d.data, d.target):
            w.writerow([*["%g" % v for v in x], d.target_names[y]])


def sklearn_fixtures():
    rng = np.random.default_rng(42)
    # 80 rows, 6 correlated features.
    base = rng.normal(size=(80, 3))
    mix = np.array([[2.0, 0.5, 0.0, 1.0, 0.2, 0.0],
                    [0.0, 1.0, 1.5, 0.0, 0.3, 0.1],
                    [0.1, 0.0, 0.2, 0.5, 0.0, 1.0]])
    x = base @ mix + 0.1 * rng.normal(size=(80, 6))
    with open("pca.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([f"f{i}" for i in range(6)])
        for row in x:
            w.writerow([repr(float(v)) for v in row])
    x = np.loadtxt("pca.csv", delimiter=",", skiprows=1)  # exactly what Go reads
    full = decomposition.PCA().fit(x)
    frac = decomposition.PCA(n_components=0.9, svd_solver="full").fit(x)
    std = preprocessing.StandardScaler().fit(x)
    mm = preprocessing.MinMaxScaler().fit(x)

    # Classification: 4 classes, class 3 is never predicted.
    y_true = rng.integers(0, 4, size=60)
    y_pred = np.where(rng.random(60) < 0.6, y_true, rng.integers(0, 3, size=60))
    b_true = rng.integers(0, 2, size=40)
    b_pred = np.where(rng.random(40) < 0.7, b_true, 1 - b_true)
    r_true = rng.normal(size=30) * 3 + 1
    r_pred = r_true + rng.normal(size=30)

    def cls(t, p):
        labels = sorted(set(t) | set(p))
        return {
            "y_true": t.tolist(), "y_pred": p.tolist(),
            "accuracy": metrics.accuracy_score(t, p),
            "precision_macro": metrics.precision_score(t, p, average="macro", zero_division=0),
            "recall_macro": metrics.recall_score(t, p, average="macro", zero_division=0),
            "f1_macro": metrics.f1_score(t, p, average="macro", zero_division=0),
            "confusion_matrix": metrics.confusion_matrix(t, p, labels=labels).tolist(),
        }

    out = {
        "sklearn_version": __import__("sklearn").__version__,
        "pca_explained_variance_ratio": full.explained_variance_ratio_.tolist(),
        "pca_components_for_0.9": int(frac.n_components_),
        "zscore_mean": std.mean_.tolist(), "zscore_scale": std.scale_.tolist(),
        "minmax_min": mm.data_min_.tolist(), "minmax_max": mm.data_max_.tolist(),
        "multiclass": cls(y_true, y_pred),
        "binary": cls(b_true, b_pred),
        "regression": {"y_true": r_true.tolist(), "y_pred": r_pred.tolist(),
                       "mse": metrics.mean_squared_error(r_true, r_pred),
                       "r2": metrics.r2_score(r_true, r_pred)},
    }
    with open("fixtures_sklearn.json", "w") as f:
        json.dump(out, f, indent=1)


def torch_fixtures():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 4, generator=g, dtype=torch.float64)
    out = {"torch_version": torch.__version__, "logits": logits.tolist()}

    z = logits.clone().requires_grad_()
    target = torch.tensor([0, 3, 1, 1, 2])
    loss = torch.nn.functional.cross_entropy(z, target)
    loss.backward()
    out["cross_entropy"] = {"target": target.tolist(), "loss": loss.item(), "grad": z.grad.tolist()}

    z = logits.clone().requires_grad_()
    t = (torch.rand(5, 4, generator=g, dtype=torch.float64) > 0.5).double()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, t)
    loss.backward()
    out["bce_with_logits"] = {"target": t.tolist(), "loss": loss.item(), "grad": z.grad.tolist()}

    z = logits.clone().requires_grad_()
    t = torch.randn(5, 4, generator=g, dtype=torch.float64)
    loss = torch.nn.functional.mse_loss(z, t)
    loss.backward()
    out["mse"] = {"target": t.tolist(), "loss": loss.item(), "grad": z.grad.tolist()}

    # Optimisers: the same parameter and gradient sequence through 3 steps.
    p0 = torch.randn(6, generator=g)
    grads = [torch.randn(6, generator=g) for _ in range(3)]

    def trajectory(make):
        p = p0.clone().requires_grad_()
        opt = make([p])
        steps = []
        for gr in grads:
            opt.zero_grad()
            p.grad = gr.clone()
            opt.step()
            steps.append(p.detach().tolist())
        return steps

    out["optim"] = {
        "p0": p0.tolist(), "grads": [x.tolist() for x in grads],
        "adam": trajectory(lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1)),
        "sgd_momentum": trajectory(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01)),
    }

    def schedule(make, epochs=10):
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)
        sched = make(opt)
        lrs = []
        for _ in range(epochs):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return lrs

    out["schedules"] = {
        "lr": 0.1, "epochs": 10,
        "step_3_0.5": schedule(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
        "cosine": schedule(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10)),
    }
    with open("fixtures_torch.json", "w") as f:
        json.dump(out, f, indent=1)


def check_golden_safetensors(path="golden.safetensors"):
    """Parse a Go-written file per the spec and read it with torch."""
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        print(f"{path} missing: run `go test ./trainer -run TestSafetensorsGolden -update` first")
        return
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    assert n % 8 == 0, "header not padded to 8 bytes"
    body = data[8 + n:]
    meta = header.pop("__metadata__", {})
    assert meta.get("format") == "pt", meta
    for name, e in header.items():
        b, end = e["data_offsets"]
        assert e["dtype"] == "F32"
        t = torch.frombuffer(bytearray(body[b:end]), dtype=torch.float32).reshape(e["shape"])
        want = torch.arange(math.prod(e["shape"]), dtype=torch.float32).reshape(e["shape"]) * 0.5 - 1
        assert torch.equal(t, want), (name, t, want)
        print("ok", name, tuple(t.shape))


def read_safetensors(path):
    """Tensors of an F32 safetensors file, parsed per the spec, via torch.frombuffer."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[b:end]), dtype=torch.float32).reshape(e["shape"])
    return out, meta


def check_iris_model(dir="iris_model"):
    """Load the Go-trained model into torch.nn.Linear layers and compare its
    probabilities on iris.csv with the Go predictions (TestSavedModelGolden)."""
    tensors, meta = read_safetensors(f"{dir}/model.safetensors")
    arch = json.loads(meta["joule_model"])
    pre = json.load(open(f"{dir}/preprocess.json"))
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}[arch["activation"]]
    layers = []
    sizes = arch["sizes"]
    for i in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1])
        lin.load_state_dict({"weight": tensors[f"layers.{i}.weight"], "bias": tensors[f"layers.{i}.bias"]})
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(act())
    net = torch.nn.Sequential(*layers).eval()
    rows = list(csv.DictReader(open("iris.csv")))
    names = [c["name"] for c in pre["columns"]]
    x = torch.tensor([[float(r[n]) for n in names] for r in rows], dtype=torch.float64)
    x = (x - torch.tensor(pre["shift"], dtype=torch.float64)) / torch.tensor(pre["scale"], dtype=torch.float64)
    with torch.no_grad():
        p = torch.softmax(net(x.float()), dim=1)
    want = json.load(open(f"{dir}/predictions.json"))
    worst = 0.0
    for i, w in enumerate(want):
        for k, cls in enumerate(pre["classes"]):
            worst = max(worst, abs(p[i, k].item() - w["probabilities"][cls]))
        assert pre["classes"][int(p[i].argmax())] == w["label"], (i, p[i], w)
    assert worst < 1e-5, worst
    print(f"ok iris_model: torch matches Go's predictions on {len(want)} rows (max diff {worst:.2e})")


if __name__ == "__main__":
    iris()
    sklearn_fixtures()
    torch_fixtures()
    check_golden_safetensors()
    check_iris_model()
