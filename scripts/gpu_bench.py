#!/usr/bin/env python3
"""Helpers of scripts/gpu-bench.sh: NVML through ctypes, and the PyTorch side.

  gpu_bench.py info                 the GPU's name and power limits (W), from NVML
  gpu_bench.py setlimit WATTS       set the GPU's power limit (root; says why not)
  gpu_bench.py measure -- CMD ...   run CMD, sample NVML's total-energy counter
                                    every 20 ms, and for every line
                                    "gpu_bench_region NAME START_NS END_NS SAMPLES"
                                    that CMD prints, report the region's samples/s,
                                    energy (J), mean power (W) and J per 60000 samples
  gpu_bench.py torch --model mnist|wide --steps N [--precision fp32|tf32|bf16]
                                    PyTorch's training steps, printing the same
                                    region line

One fact a line, for the shell script to parse. GPU_BENCH_INDEX picks the
NVML device (default 0).
"""
import argparse
import ctypes
import os
import subprocess
import sys
import threading
import time

NVML_SUCCESS = 0


class NVML:
    def __init__(self):
        try:
            self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        except OSError as e:
            raise SystemExit(f"no NVML (libnvidia-ml.so.1): {e}; is the NVIDIA driver installed?")
        self.lib.nvmlErrorString.restype = ctypes.c_char_p
        self.check(self.lib.nvmlInit_v2(), "nvmlInit_v2")
        self.handle = ctypes.c_void_p()
        idx = int(os.environ.get("GPU_BENCH_INDEX", "0"))
        self.check(self.lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(idx), ctypes.byref(self.handle)),
                   "nvmlDeviceGetHandleByIndex_v2")

    def err(self, ret):
        return self.lib.nvmlErrorString(ret).decode()

    def check(self, ret, what):
        if ret != NVML_SUCCESS:
            raise SystemExit(f"{what}: {self.err(ret)}")

    def name(self):
        buf = ctypes.create_string_buffer(96)
        self.check(self.lib.nvmlDeviceGetName(self.handle, buf, ctypes.c_uint(96)), "nvmlDeviceGetName")
        return buf.value.decode()

    def uint(self, fn):
        v = ctypes.c_uint()
        self.check(getattr(self.lib, fn)(self.handle, ctypes.byref(v)), fn)
        return v.value

    def constraints_mw(self):
        lo, hi = ctypes.c_uint(), ctypes.c_uint()
        self.check(self.lib.nvmlDeviceGetPowerManagementLimitConstraints(self.handle, ctypes.byref(lo), ctypes.byref(hi)),
                   "nvmlDeviceGetPowerManagementLimitConstraints")
        return lo.value, hi.value

    def energy_mj(self):
        v = ctypes.c_ulonglong()
        self.check(self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(v)),
                   "nvmlDeviceGetTotalEnergyConsumption")
        return v.value

    def set_limit_mw(self, mw):
        return self.lib.nvmlDeviceSetPowerManagementLimit(self.handle, ctypes.c_uint(mw))


def cmd_info(_):
    n = NVML()
    lo, hi = n.constraints_mw()
    print("gpu_name", n.name().replace(" ", "_"))
    print("default_limit_w", n.uint("nvmlDeviceGetPowerManagementDefaultLimit") / 1000)
    print("limit_w", n.uint("nvmlDeviceGetPowerManagementLimit") / 1000)
    print("min_limit_w", lo / 1000)
    print("max_limit_w", hi / 1000)


def cmd_setlimit(a):
    n = NVML()
    ret = n.set_limit_mw(int(round(a.watts * 1000)))
    if ret != NVML_SUCCESS:
        print(f"cannot set the power limit to {a.watts:.0f} W: {n.err(ret)}")
        sys.exit(1)
    print(f"power limit set to {a.watts:.0f} W")


def cmd_measure(a):
    n = NVML()
    samples = []  # (time_ns, energy_mJ)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((time.time_ns(), n.energy_mj()))
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    p = subprocess.run(a.cmd, stdout=subprocess.PIPE, text=True)
    time.sleep(0.05)
    stop.set()
    th.join()
    sys.stdout.write(p.stdout)

    def energy_at(t):  # linear interpolation of the counter
        prev = samples[0]
        for s in samples:
            if s[0] >= t:
                if s[0] == prev[0]:
                    return s[1]
                return prev[1] + (s[1] - prev[1]) * (t - prev[0]) / (s[0] - prev[0])
            prev = s
        return samples[-1][1]

    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) == 5 and f[0] == "gpu_bench_region":
            name, t0, t1, count = f[1], int(f[2]), int(f[3]), int(f[4])
            secs = (t1 - t0) / 1e9
            joules = (energy_at(t1) - energy_at(t0)) / 1000
            print(f"region {name} samples_s {count / secs:.1f} seconds {secs:.3f} energy_j {joules:.1f} "
                  f"avg_w {joules / secs:.1f} j_per_60k {joules / count * 60000:.1f}")
    sys.exit(p.returncode)


def cmd_torch(a):
    import torch
    if not torch.cuda.is_available():
        raise SystemExit("torch: no CUDA device")
    dev = torch.device("cuda")
    sizes = {"mnist": [784, 256, 128, 10], "wide": [4096, 4096, 4096, 10]}[a.model]
    batch = {"mnist": 128, "wide": 1024}[a.model]
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    # Two pinned host batches, alternated; each step copies one up (as joule does)
    # and reads the loss back (joule's Loss returns it every step).
    xs = [torch.rand(batch, sizes[0], generator=g).pin_memory() for _ in range(2)]
    ys = [torch.randint(0, sizes[-1], (batch,), generator=g).pin_memory() for _ in range(2)]

    def step(i):
        x = xs[i % 2].to(dev, non_blocking=True)
        y = ys[i % 2].to(dev, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        if a.precision == "bf16":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = lossf(net(x), y)
        else:
            loss = lossf(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for i in range(5):
        step(i)
    torch.cuda.synchronize()
    t0 = time.time_ns()
    for i in range(a.steps):
        step(i)
    torch.cuda.synchronize()
    t1 = time.time_ns()
    print("torch_version", torch.__version__)
    print(f"torch_samples_s {batch * a.steps / ((t1 - t0) / 1e9):.1f}")
    print(f"gpu_bench_region {a.model} {t0} {t1} {batch * a.steps}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="sub", required=True)
    sub.add_parser("info").set_defaults(fn=cmd_info)
    s = sub.add_parser("setlimit")
    s.add_argument("watts", type=float)
    s.set_defaults(fn=cmd_setlimit)
    m = sub.add_parser("measure")
    m.add_argument("cmd", nargs=argparse.REMAINDER)
    m.set_defaults(fn=cmd_measure)
    t = sub.add_parser("torch")
    t.add_argument("--model", choices=["mnist", "wide"], required=True)
    t.add_argument("--steps", type=int, default=100)
    t.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    t.set_defaults(fn=cmd_torch)
    a = ap.parse_args()
    if a.sub == "measure":
        if a.cmd and a.cmd[0] == "--":
            a.cmd = a.cmd[1:]
        if not a.cmd:
            ap.error("measure: give the command to run after --")
    a.fn(a)


if __name__ == "__main__":
    main()
