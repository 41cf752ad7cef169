"""Two trainings side by side at one thread each, against one training at all threads.

    python benchmarks/bench_threads.py [--profile quick] [--seconds 40]

The kit's runs of several seeds and ablations train independent networks one after another, each
with every core (torch's default). Small networks use two cores poorly, so two independent
trainings at one thread each may get more done per second than one at two threads. This measures
it, for the two networks that take most of a seed's time (step 2's observation encoder and the
one-step baseline), at the profile's batch sizes and under the precision training picks
(``mixed_precision: auto``: bf16 autocast on a CPU with native bf16):

* reference: one process, ``torch.get_num_threads()`` threads (all cores);
* one process at one thread;
* two processes at one thread each, started together: their summed samples/s.

Each case trains for ``--seconds`` of wall time (after a warm-up) with the kit's losses on random
tensors (speed does not depend on the values). Ratios are to the reference, all in this run. Do
not run it beside other work: the cores must be free.

Also shows why running two all-core jobs at once is worse than either: each case is timed alone,
but the last line runs two processes at all threads each (4 threads on 2 cores here), where
OpenMP's busy-waiting threads take turns on the cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch


def _worker(args):
    """Train ``network`` for ``seconds`` at ``threads`` threads once ``start`` is set; samples/s."""
    profile_name, network, threads, seconds, start = args
    torch.set_num_threads(threads)
    from qpi_utils.config import get_profile
    from qpi_utils.losses import alignment_loss
    from qpi_utils.models import build_kernel_vae, build_observation_encoder, build_one_step
    from qpi_utils.train import one_step_loss, resolve_mixed_precision

    prof = get_profile(profile_name, {"model.pretrained": None})
    torch.manual_seed(0)
    if network == "alignment":
        vae, info = build_kernel_vae(prof.model)
        vae.requires_grad_(False)
        model, _ = build_observation_encoder(prof.model, vae, info)
        b = prof.alignment.batch_size
        obs, target = torch.rand(b, 2, 64, 64) * 2 - 1, torch.randn(b, 4, 8, 8)

        def loss_fn():
            mean, logvar = model(obs)
            return alignment_loss(mean.float(), logvar.float(), target, target)
    else:
        model, _ = build_one_step(prof.model)
        b = prof.one_step.batch_size
        batch = {"observation": torch.rand(b, 2, 64, 64), "kernel": torch.rand(b, 1, 64, 64)}
        loss = one_step_loss(prof.one_step)

        def loss_fn():
            return loss(model, batch)[0]
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-4)
    precision = resolve_mixed_precision(getattr(prof, network).mixed_precision)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            value = loss_fn()
        opt.zero_grad()
        value.backward()
        opt.step()

    for _ in range(2):
        step()  # warm-up (oneDNN picks its kernels)
    start.wait()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += b
    return n / (time.perf_counter() - t0)


def _run(pool_size: int, profile: str, network: str, threads: int, seconds: float) -> list[float]:
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(pool_size) as pool:
            jobs = pool.map_async(_worker, [(profile, network, threads, seconds, start)] * pool_size)
            time.sleep(20)  # every worker has imported torch and built its model
            start.set()
            return jobs.get()


def main() -> None:
    from qpi_utils.config import PROFILE_NAMES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    ap.add_argument("--seconds", type=float, default=40.0)
    args = ap.parse_args()
    cores = torch.get_num_threads()
    print(f"profile {args.profile}: {cores} cores (torch threads), {args.seconds:g} s per case, "
          "training samples/s (ratio to one process at all threads)")
    for network in ("alignment", "one_step"):
        ref = _run(1, args.profile, network, cores, args.seconds)[0]
        one = _run(1, args.profile, network, 1, args.seconds)[0]
        pair = _run(2, args.profile, network, 1, args.seconds)
        both_all = _run(2, args.profile, network, cores, args.seconds)
        print(f"{network}:")
        print(f"  one process, {cores} threads (reference)    {ref:8.1f}   1.00x")
        print(f"  one process, 1 thread                  {one:8.1f}   {one / ref:.2f}x")
        print(f"  two processes, 1 thread each (sum)     {sum(pair):8.1f}   {sum(pair) / ref:.2f}x   "
              f"(each {pair[0]:.1f}, {pair[1]:.1f})")
        print(f"  two processes, {cores} threads each (sum)    {sum(both_all):8.1f}   {sum(both_all) / ref:.2f}x")


if __name__ == "__main__":
    main()
