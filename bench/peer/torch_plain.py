"""PyTorch peer timing for the plain-model train step (issue 9).

Times forward + cross-entropy + backward + SGD(momentum 0.9) on torchvision models, the same
step /work/scratch/step.js (bench) times for kernelwarehouse. Run side by side, same machine:
    /usr/bin/python3 bench/peer/torch_plain.py resnet18 64 32 10 [steps] [--profile]
Prints per-step wall and CPU ms (run with OMP_WAIT_POLICY=passive on a shared machine, or
OpenMP's spin-waits count as CPU time); --profile adds a torch.profiler table of the last step's ops.
"""
import sys
import time

import torch
import torchvision

torch.set_num_threads(2)
args = [a for a in sys.argv[1:] if not a.startswith('--')]
name, B, S, C = args[0], int(args[1]), int(args[2]), int(args[3])
steps = int(args[4]) if len(args) > 4 else 4
model = getattr(torchvision.models, name)(num_classes=C)
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(B, 3, S, S)
y = torch.arange(B) % C


def step():
    out = model(x)
    loss = torch.nn.functional.cross_entropy(out, y)
    opt.zero_grad()
    loss.backward()
    opt.step()


times, cpu = [], []  # cpu: process CPU ms, robust to a shared machine's load (use OMP_WAIT_POLICY=passive)
for _ in range(steps):
    t0, c0 = time.time(), time.process_time()
    step()
    times.append(int((time.time() - t0) * 1000))
    cpu.append(int((time.process_time() - c0) * 1000))
print(name, B, S, 'torch train ms', times, 'cpu ms', cpu, 'threads', torch.get_num_threads())
if '--profile' in sys.argv:
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=25))
