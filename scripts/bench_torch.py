#!/usr/bin/python3
"""PyTorch side of scripts/bench-trainer.sh.

Trains the MNIST MLP 784-256-128-10 (ReLU) with Adam (lr 0.001), batch 128,
on the CPU with torch.set_num_threads(THREADS), reading the same IDX files as
joule, and times each epoch's training steps. Then times torch.mm on 1024^3.

Output, one fact a line, for the shell script to parse:
    torch_version V
    threads N
    omp_wait_policy P
    openblas_core C    (the kernels OpenBLAS chose, from OPENBLAS_VERBOSE)
    epoch_s S          (one line per epoch)
    mm1024_gflops G    (one line per timed run)
"""
import argparse
import gzip
import os
import sys
import tempfile
import time

# OpenBLAS names the kernels it picks on stderr at load time when
# OPENBLAS_VERBOSE=2; catch that line (fd 2, into a temporary file) while
# torch loads OpenBLAS, then pass the rest of what was written on.
os.environ["OPENBLAS_VERBOSE"] = "2"
_log = tempfile.TemporaryFile()
_saved = os.dup(2)
os.dup2(_log.fileno(), 2)
try:
    import numpy as np  # noqa: E402
    import torch  # noqa: E402
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))  # make sure OpenBLAS is loaded
finally:
    os.dup2(_saved, 2)
    os.close(_saved)
_log.seek(0)
_blas_log = _log.read().decode(errors="replace")
_log.close()
sys.stderr.write("".join(l + "\n" for l in _blas_log.splitlines() if not l.startswith("Core:")))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def find(dirname, name):
    for cand in (name, name + ".gz"):
        p = os.path.join(dirname, cand)
        if os.path.exists(p):
            return p
    raise SystemExit(f"bench_torch: {name}[.gz] not found in {dirname}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", required=True, help="directory of the MNIST IDX files")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mm-runs", type=int, default=5)
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    print("torch_version", torch.__version__)
    print("threads", torch.get_num_threads())
    print("omp_wait_policy", os.environ.get("OMP_WAIT_POLICY", "(unset)"))
    core = [l.split(":", 1)[1].strip() for l in _blas_log.splitlines() if l.startswith("Core:")]
    print("openblas_core", core[-1] if core else "unknown")
    sys.stdout.flush()

    if not args.skip_train:
        x = read_idx(find(args.mnist, "train-images-idx3-ubyte"))
        y = read_idx(find(args.mnist, "train-labels-idx1-ubyte"))
        x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0)
        y = torch.from_numpy(y.astype(np.int64))
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10))
        opt = torch.optim.Adam(model.parameters(), lr=0.001)
        lossf = torch.nn.CrossEntropyLoss()
        n, batch = len(x), 128
        for _ in range(args.epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(n)
            total = 0.0
            for lo in range(0, n, batch):
                idx = perm[lo:lo + batch]
                xb, yb = x[idx], y[idx]
                opt.zero_grad()
                loss = lossf(model(xb), yb)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            print("epoch_s %.4f" % (time.perf_counter() - t0))
            print("loss %.4f" % (total / n))

    a = torch.rand(1024, 1024)
    b = torch.rand(1024, 1024)
    c = torch.empty(1024, 1024)
    for _ in range(3):
        torch.mm(a, b, out=c)
    for _ in range(args.mm_runs):
        # About a second a sample, as Go's benchmark of joule's kernel.
        reps, t0 = 0, time.perf_counter()
        while True:
            torch.mm(a, b, out=c)
            reps += 1
            dt = time.perf_counter() - t0
            if dt >= 1.0:
                break
        print("mm1024_gflops %.2f" % (2 * 1024 ** 3 * reps / dt / 1e9))


if __name__ == "__main__":
    main()
